//go:build cgo

// BLAKE3 chaining values of whole subtrees, written for this package from the BLAKE3
// specification (https://github.com/BLAKE3-team/BLAKE3-specs, blake3.pdf, section 2).
// Go calls karapace_b3_cv once per span (64 KiB to a few MiB), so the cost of a cgo call
// is paid once per thousand chunks, not once per chunk.
//
// Two kernels share one driver (tree_cv):
//   - many_scalar: one compression at a time, portable C;
//   - many_avx2: eight inputs at once, one per 32-bit lane of the 256-bit registers. Each
//     message word is gathered from the eight inputs by 8x8 transposes of 32-bit words.
// The AVX2 functions carry target("avx2") and run only when the CPU has AVX2, so the
// binary still runs on older CPUs. Everything but the two entry points is static.

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum {
	BLOCK_LEN = 64,
	CHUNK_LEN = 1024,
	BLOCKS_PER_CHUNK = CHUNK_LEN / BLOCK_LEN,
	FLAG_CHUNK_START = 1,
	FLAG_CHUNK_END = 2,
	FLAG_PARENT = 4,
};

enum { KERNEL_AUTO = 0, KERNEL_SCALAR = 1, KERNEL_AVX2 = 2 };

static const uint32_t b3_iv[8] = {
	0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
	0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
};

// Message word order of each of the seven rounds: round r+1 applies the specification's
// permutation (2 6 3 10 7 0 4 13 1 11 12 5 9 14 15 8) to round r's order.
static const uint8_t b3_schedule[7][16] = {
	{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	{2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
	{3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
	{10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
	{12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
	{9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
	{11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

// ---- portable scalar compression ----

static inline uint32_t rotr32(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

// This file builds only on amd64: little-endian, so words load with memcpy.
static inline void load_words(uint32_t m[16], const uint8_t *block) { memcpy(m, block, BLOCK_LEN); }

static inline void mix(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y) {
	v[a] = v[a] + v[b] + x;
	v[d] = rotr32(v[d] ^ v[a], 16);
	v[c] = v[c] + v[d];
	v[b] = rotr32(v[b] ^ v[c], 12);
	v[a] = v[a] + v[b] + y;
	v[d] = rotr32(v[d] ^ v[a], 8);
	v[c] = v[c] + v[d];
	v[b] = rotr32(v[b] ^ v[c], 7);
}

// compress replaces cv by the first eight output words of one compression.
static void compress(uint32_t cv[8], const uint32_t m[16], uint64_t counter, uint32_t len, uint32_t flags) {
	uint32_t v[16] = {
		cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
		b3_iv[0], b3_iv[1], b3_iv[2], b3_iv[3],
		(uint32_t)counter, (uint32_t)(counter >> 32), len, flags,
	};
	for (int r = 0; r < 7; r++) {
		const uint8_t *s = b3_schedule[r];
		mix(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
		mix(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
		mix(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
		mix(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
		mix(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
		mix(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
		mix(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
		mix(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
	}
	for (int i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

// chunk_cv hashes one chunk of 0 to 1024 bytes; the last block is zero-padded and
// compressed with its true length.
static void chunk_cv(const uint8_t *p, size_t len, uint64_t counter, uint32_t cv[8]) {
	uint32_t m[16];
	uint32_t flags = FLAG_CHUNK_START;
	memcpy(cv, b3_iv, sizeof b3_iv);
	while (len > BLOCK_LEN) {
		load_words(m, p);
		compress(cv, m, counter, BLOCK_LEN, flags);
		flags = 0;
		p += BLOCK_LEN;
		len -= BLOCK_LEN;
	}
	uint8_t last[BLOCK_LEN] = {0};
	if (len > 0) memcpy(last, p, len);
	load_words(m, last);
	compress(cv, m, counter, (uint32_t)len, flags | FLAG_CHUNK_END);
}

static void parent_cv(const uint8_t *children, uint32_t cv[8]) {
	uint32_t m[16];
	load_words(m, children);
	memcpy(cv, b3_iv, sizeof b3_iv);
	compress(cv, m, 0, BLOCK_LEN, FLAG_PARENT);
}

// A many function hashes eight inputs of `blocks` whole blocks each and stores their
// eight chaining values, 32 bytes each, at out. Input i uses counter+i when inc is set,
// counter otherwise; every block has flags, the first also start, the last also end.
// out may overlap the inputs when blocks == 1 provided out <= in[0] and the inputs are
// consecutive 64-byte blocks (the in-place parent reduction): every input is read
// before the first output is written.
typedef void (*many_fn)(const uint8_t *const in[8], size_t blocks, uint64_t counter, int inc,
	uint32_t flags, uint32_t start, uint32_t end, uint8_t *out);

static void many_scalar(const uint8_t *const in[8], size_t blocks, uint64_t counter, int inc,
	uint32_t flags, uint32_t start, uint32_t end, uint8_t *out) {
	uint32_t cvs[8][8];
	for (int lane = 0; lane < 8; lane++) {
		memcpy(cvs[lane], b3_iv, sizeof b3_iv);
		for (size_t b = 0; b < blocks; b++) {
			uint32_t m[16];
			uint32_t f = flags | (b == 0 ? start : 0) | (b + 1 == blocks ? end : 0);
			load_words(m, in[lane] + b * BLOCK_LEN);
			compress(cvs[lane], m, counter + (inc ? (uint64_t)lane : 0), BLOCK_LEN, f);
		}
	}
	memcpy(out, cvs, sizeof cvs);
}

// ---- AVX2: eight compressions at once ----

#define AVX2 __attribute__((target("avx2"), always_inline)) static inline

AVX2 __m256i xor256(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }

// Byte shuffle indices for the rotations by 16 and 8, which move whole bytes.
static const uint8_t rot16_idx[32] __attribute__((aligned(32))) = {
	2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
	2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13,
};
static const uint8_t rot8_idx[32] __attribute__((aligned(32))) = {
	1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
	1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12,
};

// G runs the G function on the state vectors A, B, C, D with message words m[X], m[Y].
// It is assembly because the sixteen state vectors fill the sixteen AVX2 registers and
// the compiler, left alone, spilled about forty of them per round to the stack (a third
// of the run time). Here the rotations by 12 and 7 borrow a's register for their
// temporary while a waits in memory, and the byte shuffles read their index vectors
// from memory, so the state stays in registers. The four G of each half round are
// independent and the CPU overlaps them; each has its own spill slot S.
#define G(A, B, C, D, X, Y, S) \
	__asm__( \
		"vpaddd %[mx], %[a], %[a]\n\t" \
		"vpaddd %[b], %[a], %[a]\n\t" \
		"vpxor %[a], %[d], %[d]\n\t" \
		"vpshufb %[r16], %[d], %[d]\n\t" \
		"vpaddd %[d], %[c], %[c]\n\t" \
		"vpxor %[c], %[b], %[b]\n\t" \
		"vmovdqu %[a], %[spill]\n\t" \
		"vpsrld $12, %[b], %[a]\n\t" \
		"vpslld $20, %[b], %[b]\n\t" \
		"vpor %[a], %[b], %[b]\n\t" \
		"vmovdqu %[spill], %[a]\n\t" \
		"vpaddd %[my], %[a], %[a]\n\t" \
		"vpaddd %[b], %[a], %[a]\n\t" \
		"vpxor %[a], %[d], %[d]\n\t" \
		"vpshufb %[r8], %[d], %[d]\n\t" \
		"vpaddd %[d], %[c], %[c]\n\t" \
		"vpxor %[c], %[b], %[b]\n\t" \
		"vmovdqu %[a], %[spill]\n\t" \
		"vpsrld $7, %[b], %[a]\n\t" \
		"vpslld $25, %[b], %[b]\n\t" \
		"vpor %[a], %[b], %[b]\n\t" \
		"vmovdqu %[spill], %[a]" \
		: [a] "+x"(A), [b] "+x"(B), [c] "+x"(C), [d] "+x"(D), [spill] "=m"(S) \
		: [mx] "m"(m[X]), [my] "m"(m[Y]), [r16] "m"(rot16_idx), [r8] "m"(rot8_idx))
// G2 runs two independent G functions together, step by step, in one block of
// assembly (the sixteen state vectors fill the sixteen AVX2 registers). Only the
// rotations by 12 and 7 need a spare register: for each, the first G's c vector (which
// that step does not read) goes to memory once and serves as the temporary for both
// rotations. Per G, a waited in memory on its critical path four times per G instead.
#define G2(A0, A1, B0, B1, C0, C1, D0, D1, X0, X1, Y0, Y1, S) \
	__asm__( \
		"vpaddd %[x0], %[a0], %[a0]\n\t" \
		"vpaddd %[x1], %[a1], %[a1]\n\t" \
		"vpaddd %[b0], %[a0], %[a0]\n\t" \
		"vpaddd %[b1], %[a1], %[a1]\n\t" \
		"vpxor %[a0], %[d0], %[d0]\n\t" \
		"vpxor %[a1], %[d1], %[d1]\n\t" \
		"vpshufb %[r16], %[d0], %[d0]\n\t" \
		"vpshufb %[r16], %[d1], %[d1]\n\t" \
		"vpaddd %[d0], %[c0], %[c0]\n\t" \
		"vpaddd %[d1], %[c1], %[c1]\n\t" \
		"vpxor %[c0], %[b0], %[b0]\n\t" \
		"vpxor %[c1], %[b1], %[b1]\n\t" \
		"vmovdqu %[c0], %[spill]\n\t" \
		"vpsrld $12, %[b0], %[c0]\n\t" \
		"vpslld $20, %[b0], %[b0]\n\t" \
		"vpor %[c0], %[b0], %[b0]\n\t" \
		"vpsrld $12, %[b1], %[c0]\n\t" \
		"vpslld $20, %[b1], %[b1]\n\t" \
		"vpor %[c0], %[b1], %[b1]\n\t" \
		"vmovdqu %[spill], %[c0]\n\t" \
		"vpaddd %[y0], %[a0], %[a0]\n\t" \
		"vpaddd %[y1], %[a1], %[a1]\n\t" \
		"vpaddd %[b0], %[a0], %[a0]\n\t" \
		"vpaddd %[b1], %[a1], %[a1]\n\t" \
		"vpxor %[a0], %[d0], %[d0]\n\t" \
		"vpxor %[a1], %[d1], %[d1]\n\t" \
		"vpshufb %[r8], %[d0], %[d0]\n\t" \
		"vpshufb %[r8], %[d1], %[d1]\n\t" \
		"vpaddd %[d0], %[c0], %[c0]\n\t" \
		"vpaddd %[d1], %[c1], %[c1]\n\t" \
		"vpxor %[c0], %[b0], %[b0]\n\t" \
		"vpxor %[c1], %[b1], %[b1]\n\t" \
		"vmovdqu %[c0], %[spill]\n\t" \
		"vpsrld $7, %[b0], %[c0]\n\t" \
		"vpslld $25, %[b0], %[b0]\n\t" \
		"vpor %[c0], %[b0], %[b0]\n\t" \
		"vpsrld $7, %[b1], %[c0]\n\t" \
		"vpslld $25, %[b1], %[b1]\n\t" \
		"vpor %[c0], %[b1], %[b1]\n\t" \
		"vmovdqu %[spill], %[c0]" \
		: [a0] "+x"(A0), [a1] "+x"(A1), [b0] "+x"(B0), [b1] "+x"(B1), \
		  [c0] "+x"(C0), [c1] "+x"(C1), [d0] "+x"(D0), [d1] "+x"(D1), [spill] "=m"(S) \
		: [x0] "m"(m[X0]), [x1] "m"(m[X1]), [y0] "m"(m[Y0]), [y1] "m"(m[Y1]), \
		  [r16] "m"(rot16_idx), [r8] "m"(rot8_idx))
#define ROUND8(s) \
	do { \
		G2(v0, v1, v4, v5, v8, v9, v12, v13, s[0], s[2], s[1], s[3], spill[0]); \
		G2(v2, v3, v6, v7, v10, v11, v14, v15, s[4], s[6], s[5], s[7], spill[1]); \
		G2(v0, v1, v5, v6, v10, v11, v15, v12, s[8], s[10], s[9], s[11], spill[0]); \
		G2(v2, v3, v7, v4, v8, v9, v13, v14, s[12], s[14], s[13], s[15], spill[1]); \
	} while (0)

// transpose8 turns eight rows of eight 32-bit words into eight columns: afterwards r[j]
// holds word j of every former row, row i in element i.
AVX2 void transpose8(__m256i r[8]) {
	__m256i t[8], u[8];
	for (int i = 0; i < 4; i++) {
		t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);     // words 0,1 | 4,5 of two rows
		t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]); // words 2,3 | 6,7
	}
	for (int h = 0; h < 2; h++) { // rows 0-3, then rows 4-7
		const __m256i *q = t + 4 * h;
		u[4 * h + 0] = _mm256_unpacklo_epi64(q[0], q[2]); // word 0 | word 4 of four rows
		u[4 * h + 1] = _mm256_unpackhi_epi64(q[0], q[2]); // word 1 | word 5
		u[4 * h + 2] = _mm256_unpacklo_epi64(q[1], q[3]); // word 2 | word 6
		u[4 * h + 3] = _mm256_unpackhi_epi64(q[1], q[3]); // word 3 | word 7
	}
	for (int j = 0; j < 4; j++) {
		r[j] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x20);
		r[j + 4] = _mm256_permute2x128_si256(u[j], u[4 + j], 0x31);
	}
}

__attribute__((target("avx2"))) static void many_avx2(const uint8_t *const in[8], size_t blocks,
	uint64_t counter, int inc, uint32_t flags, uint32_t start, uint32_t end, uint8_t *out) {
	__m256i h[8];
	for (int i = 0; i < 8; i++) h[i] = _mm256_set1_epi32((int)b3_iv[i]);
	uint32_t lo[8], hi[8];
	for (int lane = 0; lane < 8; lane++) {
		uint64_t c = counter + (inc ? (uint64_t)lane : 0);
		lo[lane] = (uint32_t)c;
		hi[lane] = (uint32_t)(c >> 32);
	}
	const __m256i counter_lo = _mm256_loadu_si256((const __m256i *)lo);
	const __m256i counter_hi = _mm256_loadu_si256((const __m256i *)hi);
	const __m256i block_len = _mm256_set1_epi32(BLOCK_LEN);
	for (size_t b = 0; b < blocks; b++) {
		__m256i m[16];
		for (int lane = 0; lane < 8; lane++) {
			const uint8_t *p = in[lane] + b * BLOCK_LEN;
			m[lane] = _mm256_loadu_si256((const __m256i *)p);
			m[lane + 8] = _mm256_loadu_si256((const __m256i *)(p + 32));
		}
		transpose8(m);
		transpose8(m + 8);
		uint32_t f = flags | (b == 0 ? start : 0) | (b + 1 == blocks ? end : 0);
		__m256i spill[4];
		__m256i v0 = h[0], v1 = h[1], v2 = h[2], v3 = h[3], v4 = h[4], v5 = h[5], v6 = h[6], v7 = h[7];
		__m256i v8 = _mm256_set1_epi32((int)b3_iv[0]), v9 = _mm256_set1_epi32((int)b3_iv[1]);
		__m256i v10 = _mm256_set1_epi32((int)b3_iv[2]), v11 = _mm256_set1_epi32((int)b3_iv[3]);
		__m256i v12 = counter_lo, v13 = counter_hi, v14 = block_len, v15 = _mm256_set1_epi32((int)f);
		ROUND8(b3_schedule[0]);
		ROUND8(b3_schedule[1]);
		ROUND8(b3_schedule[2]);
		ROUND8(b3_schedule[3]);
		ROUND8(b3_schedule[4]);
		ROUND8(b3_schedule[5]);
		ROUND8(b3_schedule[6]);
		h[0] = xor256(v0, v8), h[1] = xor256(v1, v9), h[2] = xor256(v2, v10), h[3] = xor256(v3, v11);
		h[4] = xor256(v4, v12), h[5] = xor256(v5, v13), h[6] = xor256(v6, v14), h[7] = xor256(v7, v15);
	}
	transpose8(h);
	for (int lane = 0; lane < 8; lane++) _mm256_storeu_si256((__m256i *)(out + 32 * lane), h[lane]);
}

// ---- the tree ----

// subtree_pow2 computes the chaining value of n = 2^k whole chunks starting at chunk
// number counter. scratch holds 32 bytes per chunk: the chunk chaining values, then
// each level of parents, computed in place over the level below.
static void subtree_pow2(const uint8_t *p, size_t n, uint64_t counter, uint8_t *scratch, many_fn many, uint32_t cv[8]) {
	if (n == 1) {
		chunk_cv(p, CHUNK_LEN, counter, cv);
		return;
	}
	const uint8_t *in[8];
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		for (int k = 0; k < 8; k++) in[k] = p + (i + k) * CHUNK_LEN;
		many(in, BLOCKS_PER_CHUNK, counter + i, 1, 0, FLAG_CHUNK_START, FLAG_CHUNK_END, scratch + 32 * i);
	}
	for (; i < n; i++) {
		uint32_t c[8];
		chunk_cv(p + i * CHUNK_LEN, CHUNK_LEN, counter + i, c);
		memcpy(scratch + 32 * i, c, 32);
	}
	for (; n > 1; n /= 2) {
		size_t half = n / 2, j = 0;
		for (; j + 8 <= half; j += 8) {
			for (int k = 0; k < 8; k++) in[k] = scratch + 64 * (j + k);
			many(in, 1, 0, 0, FLAG_PARENT, 0, 0, scratch + 32 * j);
		}
		for (; j < half; j++) {
			uint32_t c[8];
			parent_cv(scratch + 64 * j, c);
			memcpy(scratch + 32 * j, c, 32);
		}
	}
	memcpy(cv, scratch, 32);
}

// tree_cv computes the chaining value of len > 0 bytes starting at chunk number counter,
// as a non-root node of the BLAKE3 tree: the left subtree holds the largest power of two
// of chunks that leaves at least one byte to the right.
static void tree_cv(const uint8_t *p, size_t len, uint64_t counter, uint8_t *scratch, many_fn many, uint32_t cv[8]) {
	if (len <= CHUNK_LEN) {
		chunk_cv(p, len, counter, cv);
		return;
	}
	size_t chunks = (len + CHUNK_LEN - 1) / CHUNK_LEN;
	if (len % CHUNK_LEN == 0 && (chunks & (chunks - 1)) == 0) {
		subtree_pow2(p, chunks, counter, scratch, many, cv);
		return;
	}
	size_t left = (size_t)1 << (63 - __builtin_clzll((unsigned long long)(chunks - 1)));
	uint32_t children[16];
	subtree_pow2(p, left, counter, scratch, many, children);
	tree_cv(p + left * CHUNK_LEN, len - left * CHUNK_LEN, counter + left, scratch, many, children + 8);
	parent_cv((const uint8_t *)children, cv);
}

// ---- entry points ----

// karapace_b3_have_avx2 reports whether the AVX2 kernel can run on this CPU (and OS).
int karapace_b3_have_avx2(void) {
	__builtin_cpu_init();
	return __builtin_cpu_supports("avx2") ? 1 : 0;
}

// karapace_b3_cv stores at out the 32-byte chaining value of the len > 0 bytes at p,
// hashed as a non-root subtree whose first chunk is chunk number counter. scratch holds
// 32 bytes per chunk of len. kernel is KERNEL_AUTO, KERNEL_SCALAR or KERNEL_AVX2 (which
// falls back to scalar on a CPU without AVX2). Returns 0, or -1 for len == 0.
int karapace_b3_cv(const uint8_t *p, size_t len, uint64_t counter, uint8_t *scratch, int kernel, uint8_t *out) {
	if (len == 0) return -1;
	many_fn many = many_scalar;
	if (kernel != KERNEL_SCALAR && karapace_b3_have_avx2()) many = many_avx2;
	uint32_t cv[8];
	tree_cv(p, len, counter, scratch, many, cv);
	memcpy(out, cv, 32);
	return 0;
}
