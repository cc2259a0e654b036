package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// waitBuilding waits until a build has claimed its environment: it then runs its slow
// part without the store lock (docs/engine.md, "Builds and the store lock").
func (w *world) waitBuilding() {
	w.t.Helper()
	waitFor(w.t, 20*time.Second, "a build to claim its environment", func() bool {
		ents, _ := os.ReadDir(filepath.Join(w.store, "store", "builds"))
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".") {
				return true
			}
		}
		return false
	})
}

// TestCLIExecWhileAnotherBuilds: a slow build does not hold the store lock, so exec,
// list and freeze of another environment complete at once while it runs.
func TestCLIExecWhileAnotherBuilds(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "ready")
	w.manifest("slow/karapace.toml", "rolling", "git")
	w.env = append(w.env, "KARAPACE_MOCK_BUILD_DELAY=20s")
	c := w.cmd("build", "--name", "slow", "slow/karapace.toml")
	w.env = w.env[:len(w.env)-1]
	var errb syncBuffer
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	w.waitBuilding()
	start := time.Now()
	r := w.ok("--lock-timeout", "5s", "exec", "ready", "--", "echo", "hi")
	if !strings.Contains(r.stdout, "hi") {
		t.Errorf("exec while another environment builds: %s", r)
	}
	if r := w.ok("--lock-timeout", "5s", "list"); strings.Contains(r.stdout, "slow") {
		t.Errorf("list shows the environment still being built:\n%s", r.stdout)
	}
	w.ok("--lock-timeout", "5s", "freeze", "ready")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("exec, list and freeze took %v while another environment built", d)
	}
	if c.ProcessState != nil {
		t.Fatalf("the build ended early: %s", errb.String())
	}
	// Killed midway, the build leaves nothing the next command does not settle.
	_ = c.Process.Kill()
	_ = c.Wait()
	var v verifyResult
	w.jsonOK(&v, "verify-store")
	if v.Failed != 0 {
		t.Errorf("verify after a killed build: %+v", v)
	}
	var dirs []string
	ents, _ := os.ReadDir(filepath.Join(w.store, "env"))
	for _, e := range ents {
		if len(e.Name()) == 64 {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) != 1 {
		t.Errorf("environment directories after a killed build and a command: %v", dirs)
	}
	if ents, _ := os.ReadDir(filepath.Join(w.store, "store", "builds")); len(ents) != 0 {
		t.Errorf("build claims left: %v", ents)
	}
}
