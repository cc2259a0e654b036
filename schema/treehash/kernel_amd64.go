//go:build amd64 && !purego

package treehash

import (
	"encoding/binary"
	"unsafe"

	"golang.org/x/sys/cpu"
)

//go:generate sh -c "go run gen_kernel.go > kernel_amd64.s"

// hashMany8 is kernel_amd64.s: eight inputs of blocks 64-byte blocks each, input k at
// in+k*stride, hashed at once in the lanes of the AVX2 registers; their chaining
// values go to out, 32 bytes each. st is a state block (stateSize bytes) holding the
// counters and flags (setLanes) and the kernel's working space.
//
//go:noescape
func hashMany8(in *byte, stride uintptr, blocks uintptr, st *byte, out *byte)

// The state block of hashMany8, as gen_kernel.go lays it out.
const (
	stCtrLo = 512
	stCtrHi = 544
	stFlags = 608
	stStart = 612
	stEnd   = 616
)

// BLAKE3 domain flags.
const (
	flagChunkStart = 1
	flagChunkEnd   = 2
	flagParent     = 4
)

const chunkLen = 1024

// defaultKernel is the assembly kernel when the CPU has AVX2, the pure-Go one otherwise.
func defaultKernel() kernel {
	if cpu.X86.HasAVX2 {
		return avx2Kernel
	}
	return gutsKernel
}

// platformKernels is every kernel this machine runs, by name (tests compare them).
func platformKernels() map[string]kernel {
	if cpu.X86.HasAVX2 {
		return map[string]kernel{"avx2": avx2Kernel}
	}
	return nil
}

// avx2Kernel computes a span's CV eight chunks at a time (hashMany8), then reduces the
// chunk CVs level by level, eight parents at a time, in scratch.
func avx2Kernel(p []byte, counter uint64, scratch []byte) [8]uint32 {
	if len(scratch) < scratchSize(len(p)) {
		// Callers never do this: the assembly must not be handed short memory.
		return gutsCV(p, counter)
	}
	// The state block goes on a 64-byte boundary (aligned vector loads and stores).
	skip := (64 - int(uintptr(unsafe.Pointer(&scratch[0]))%64)) % 64
	st := scratch[skip : skip+stateSize]
	cvs := scratch[skip+stateSize:]
	return treeCV(p, counter, st, cvs)
}

// treeCV is the CV of len(p) > 0 bytes from chunk number counter, as a non-root node:
// the left subtree holds the largest power of two of chunks that leaves at least one
// byte to the right.
func treeCV(p []byte, counter uint64, st, cvs []byte) [8]uint32 {
	chunks := (len(p) + chunkLen - 1) / chunkLen
	if chunks < 16 {
		return gutsCV(p, counter)
	}
	if len(p)%chunkLen == 0 && chunks&(chunks-1) == 0 {
		return subtreeCV(p, counter, st, cvs)
	}
	left := 1
	for left*2 < chunks {
		left *= 2
	}
	l := subtreeCV(p[:left*chunkLen], counter, st, cvs)
	r := treeCV(p[left*chunkLen:], counter+uint64(left), st, cvs)
	return parentCV(l, r)
}

// subtreeCV is the CV of a power of two (16 or more) of whole chunks.
func subtreeCV(p []byte, counter uint64, st, cvs []byte) [8]uint32 {
	n := len(p) / chunkLen
	_ = cvs[32*n-1] // every write below is inside cvs
	for i := 0; i < n; i += 8 {
		setLanes(st, counter+uint64(i), 1, 0, flagChunkStart, flagChunkEnd)
		hashMany8(&p[i*chunkLen], chunkLen, chunkLen/64, &st[0], &cvs[32*i])
	}
	// Each level's parents overwrite the front of the level below: eight at a time
	// while there are eight, then one at a time.
	setLanes(st, 0, 0, flagParent, 0, 0)
	for ; n > 1; n /= 2 {
		half, j := n/2, 0
		for ; j+8 <= half; j += 8 {
			hashMany8(&cvs[64*j], 64, 1, &st[0], &cvs[32*j])
		}
		for ; j < half; j++ {
			cv := parentCV(words(cvs[64*j:]), words(cvs[64*j+32:]))
			putWords(cvs[32*j:], cv)
		}
	}
	return words(cvs)
}

// setLanes stores the counters of the eight lanes (counter + k*inc for lane k) and the
// flags of every block, the first and the last.
func setLanes(st []byte, counter, inc uint64, flags, start, end uint32) {
	_ = st[stateSize-1]
	for k := range uint64(8) {
		c := counter + k*inc
		binary.LittleEndian.PutUint32(st[stCtrLo+4*k:], uint32(c))
		binary.LittleEndian.PutUint32(st[stCtrHi+4*k:], uint32(c>>32))
	}
	binary.LittleEndian.PutUint32(st[stFlags:], flags)
	binary.LittleEndian.PutUint32(st[stStart:], start)
	binary.LittleEndian.PutUint32(st[stEnd:], end)
}

func words(b []byte) (w [8]uint32) {
	_ = b[31]
	for i := range w {
		w[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return w
}

func putWords(b []byte, w [8]uint32) {
	_ = b[31]
	for i, x := range w {
		binary.LittleEndian.PutUint32(b[4*i:], x)
	}
}
