package treehash

import (
	"math/bits"

	"lukechampine.com/blake3/guts"
)

// A kernel returns the chaining value of len(p) > 0 bytes hashed as a non-root BLAKE3
// subtree whose first chunk is chunk number counter. scratch holds at least
// scratchSize(len(p)) bytes of working space (the assembly kernel uses it; gutsKernel
// does not).
type kernel func(p []byte, counter uint64, scratch []byte) [8]uint32

// scratchSize is the scratch a kernel needs for n bytes: a state block on a 64-byte
// boundary, then 32 bytes per chunk.
func scratchSize(n int) int { return 64 + stateSize + 32*((n+guts.ChunkSize-1)/guts.ChunkSize) }

// stateSize is the assembly kernel's state block (kernel_amd64.s).
const stateSize = 640

// gutsKernel is the pure-Go kernel: lukechampine.com/blake3/guts hashes 16 chunks per
// call (AVX2 assembly on amd64, Go elsewhere).
func gutsKernel(p []byte, counter uint64, _ []byte) [8]uint32 { return gutsCV(p, counter) }

// bufSize is what one guts.CompressBuffer call hashes: 16 chunks.
const bufSize = guts.MaxSIMD * guts.ChunkSize

func gutsCV(p []byte, counter uint64) [8]uint32 {
	if len(p) == bufSize {
		return guts.ChainingValue(guts.CompressBuffer((*[bufSize]byte)(p), bufSize, &guts.IV, counter, 0))
	}
	if len(p) < bufSize {
		// CompressBuffer reads a whole 16 KiB array whatever the length it is given.
		var buf [bufSize]byte
		copy(buf[:], p)
		return guts.ChainingValue(guts.CompressBuffer(&buf, len(p), &guts.IV, counter, 0))
	}
	// The left subtree is the largest power of two of chunks that leaves at least one
	// byte to the right.
	chunks := uint64(len(p)+guts.ChunkSize-1) / guts.ChunkSize
	left := uint64(1) << (bits.Len64(chunks-1) - 1)
	l := gutsCV(p[:left*guts.ChunkSize], counter)
	r := gutsCV(p[left*guts.ChunkSize:], counter+left)
	return parentCV(l, r)
}

// parentCV is the chaining value of a non-root parent node.
func parentCV(l, r [8]uint32) [8]uint32 {
	return guts.ChainingValue(guts.ParentNode(l, r, &guts.IV, 0))
}

// rootDigest finalizes the root parent node: its first 32 output bytes are the digest.
func rootDigest(l, r [8]uint32) [32]byte {
	out := guts.CompressNode(guts.ParentNode(l, r, &guts.IV, guts.FlagRoot))
	var d [32]byte
	for i := range 8 {
		d[4*i] = byte(out[i])
		d[4*i+1] = byte(out[i] >> 8)
		d[4*i+2] = byte(out[i] >> 16)
		d[4*i+3] = byte(out[i] >> 24)
	}
	return d
}
