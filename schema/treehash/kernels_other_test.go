//go:build !cgo || !amd64

package treehash

import "testing"

// testKernels is every kernel built on this machine, by name.
func testKernels(testing.TB) map[string]kernel {
	return map[string]kernel{"guts": gutsKernel, "default": defaultKernel()}
}
