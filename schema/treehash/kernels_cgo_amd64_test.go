//go:build cgo

package treehash

import (
	"os"
	"testing"
)

// testKernels is every kernel built on this machine, by name.
func testKernels(t testing.TB) map[string]kernel {
	ks := map[string]kernel{"guts": gutsKernel, "c-scalar": cKernel(cScalar), "c-auto": cKernel(cAuto)}
	if haveAVX2() {
		ks["c-avx2"] = cKernel(cAVX2)
	} else {
		// Hardware, not a package: CI cannot install it, so this skips even there.
		t.Logf("WARNING: this CPU has no AVX2: the AVX2 kernel is NOT tested (CI=%q)", os.Getenv("CI"))
	}
	return ks
}
