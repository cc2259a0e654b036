//go:build amd64 && !purego

package treehash

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// TestKernelGenerated: kernel_amd64.s is what gen_kernel.go writes today.
func TestKernelGenerated(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the go command is not on PATH: %v", err)
		}
		t.Skipf("the go command is not on PATH: %v", err)
	}
	got, err := exec.Command(goBin, "run", "gen_kernel.go").Output()
	if err != nil {
		t.Fatalf("go run gen_kernel.go: %v", err)
	}
	want, err := os.ReadFile("kernel_amd64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("kernel_amd64.s is stale: run go generate in schema/treehash")
	}
}
