// Package treehash computes the BLAKE3-256 digest of one large file on several cores.
//
// BLAKE3 is a binary tree over 1 KiB chunks: the chaining value (CV) of every aligned
// power-of-two run of chunks depends only on those chunks and the index of the first.
// SumReaderAt cuts the input into spans of 1 MiB; worker goroutines (up to GOMAXPROCS)
// read spans with pread into their own buffers and compute each span's CV; the calling
// goroutine merges the CVs in order on a CV stack and finalizes the root.
//
//	file --pread--> worker 1: span 0, 2, ... -> CV --+
//	     --pread--> worker 2: span 1, 3, ... -> CV --+--> stack merge (in order) --> root --> Digest
//
// On amd64 with cgo a span's CV comes from kernel_amd64.c, written for this package from
// the BLAKE3 specification: eight chunks at a time in the lanes of AVX2 registers when
// the CPU has AVX2 (chosen at run time), portable C otherwise. Elsewhere the pure-Go
// lukechampine.com/blake3/guts does the same job. Inputs below MinSize, or when only one
// core is available, go through github.com/zeebo/blake3 on the calling goroutine, which
// is the fastest single-core BLAKE3 in Go.
//
// The file is read, not mapped: a mapped file that shrinks raises SIGBUS at the first
// access beyond its new end, and in C code that kills the process. A short read gives
// an error matching ErrSizeChanged instead.
//
// treehash imports only the schema package (for Digest).
package treehash
