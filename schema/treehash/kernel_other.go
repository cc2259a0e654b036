//go:build !cgo || !amd64

package treehash

// defaultKernel is the pure-Go kernel (lukechampine.com/blake3/guts) where the C kernel
// is not built.
func defaultKernel() kernel { return gutsKernel }
