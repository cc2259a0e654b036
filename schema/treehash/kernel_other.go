//go:build !amd64 || purego

package treehash

// defaultKernel is the pure-Go kernel (lukechampine.com/blake3/guts) where the assembly
// kernel is not built.
func defaultKernel() kernel { return gutsKernel }

// platformKernels is every kernel of this platform besides gutsKernel: none.
func platformKernels() map[string]kernel { return nil }
