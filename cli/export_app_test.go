package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIExportApp: export-app writes a launcher that runs the command in the
// environment through this very binary (arguments passed on) and a desktop entry;
// unexport-app removes both; hostile names are refused.
func TestCLIExportApp(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")
	home := ""
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	r := w.ok("export-app", "demo", "greet", "echo", "--loud", "hello")
	launcher := filepath.Join(home, ".local", "bin", "greet")
	if !strings.Contains(r.stdout, launcher) {
		t.Errorf("export-app output: %s", r)
	}
	c := exec.Command(launcher, "world")
	c.Env = w.env
	c.Dir = w.dir
	out, err := c.CombinedOutput()
	if err != nil || string(out) != "mock-exec: echo --loud hello world\n" {
		t.Fatalf("launcher: %v: %q", err, out)
	}
	desktops, _ := filepath.Glob(filepath.Join(home, ".local", "share", "applications", "karapace-*-greet.desktop"))
	if len(desktops) != 1 {
		t.Fatalf("desktop entries %v", desktops)
	}
	w.fail(1, []string{"invalid"}, "export-app", "demo", "../evil", "true")
	w.ok("unexport-app", "demo", "greet")
	for _, p := range []string{launcher, desktops[0]} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", p, err)
		}
	}
	w.fail(1, nil, "unexport-app", "demo", "greet")
}
