//go:build cgo

package treehash

/*
#cgo CFLAGS: -O3
#include <stddef.h>
#include <stdint.h>
int karapace_b3_have_avx2(void);
int karapace_b3_cv(const uint8_t *p, size_t len, uint64_t counter, uint8_t *scratch, int kernel, uint8_t *out);
*/
import "C"

import "unsafe"

// The kernels of kernel_amd64.c; the numbers are its KERNEL_* constants.
const (
	cAuto   = 0
	cScalar = 1
	cAVX2   = 2
)

// haveAVX2 reports whether the C AVX2 kernel runs on this machine.
func haveAVX2() bool { return C.karapace_b3_have_avx2() == 1 }

// defaultKernel is the C kernel: AVX2 when the CPU has it, scalar C otherwise.
func defaultKernel() kernel { return cKernel(cAuto) }

// cKernel returns the C kernel of the given kind. One call hashes a whole span.
func cKernel(kind int) kernel {
	return func(p []byte, counter uint64, scratch []byte) [8]uint32 {
		var cv [8]uint32
		if len(p) == 0 || len(scratch) < scratchSize(len(p)) {
			// Callers never do this; the C code must not be handed a short scratch.
			return gutsCV(p, counter)
		}
		// p and scratch are Go memory without Go pointers, used only during the call.
		C.karapace_b3_cv((*C.uint8_t)(unsafe.Pointer(&p[0])), C.size_t(len(p)), C.uint64_t(counter),
			(*C.uint8_t)(unsafe.Pointer(&scratch[0])), C.int(kind), (*C.uint8_t)(unsafe.Pointer(&cv[0])))
		return cv
	}
}
