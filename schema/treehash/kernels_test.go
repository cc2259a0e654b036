package treehash

import (
	"os"
	"runtime"
	"testing"
)

// testKernels is every kernel built on this machine, by name.
func testKernels(t testing.TB) map[string]kernel {
	ks := map[string]kernel{"guts": gutsKernel}
	for name, k := range platformKernels() {
		ks[name] = k
	}
	if runtime.GOARCH == "amd64" && len(ks) == 1 {
		// Hardware, not a package: CI cannot install it, so this skips even there.
		t.Logf("WARNING: no AVX2 kernel on this machine: it is NOT tested (CI=%q)", os.Getenv("CI"))
	}
	return ks
}
