package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

// TestCLIGUIAppPinned: a real Debian environment (the debootstrapped fixture as a local
// base image, apt in the build sandbox) whose only package is a `[gui] apps` entry. The
// lock pins it at the version apt resolved, the app runs, its launcher is exported into
// the test's HOME, a locked build gives the same id, and destroy removes the launcher.
func TestCLIGUIAppPinned(t *testing.T) {
	tarball := testrootfs.DebianTarball(t, "bookworm")
	w := newWorld(t)
	mountsBefore := mounts(t)
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \""+tarball+"\"\n\n[gui]\napps = [\"hello\"]\n\n[runtime]\nbackend = \"namespace\"\n")
	id := w.buildNamed("karapace.toml", "gui")
	lock, err := schema.ReadLock(filepath.Join(w.dir, "karapace.lock"))
	if err != nil {
		t.Fatal(err)
	}
	if len(lock.ResolvedPackages) != 1 || lock.ResolvedPackages[0].Name != "hello" ||
		lock.ResolvedPackages[0].Version == "" || strings.Contains(lock.ResolvedPackages[0].Version, "unresolved") {
		t.Fatalf("lock pins %+v, want hello at a version", lock.ResolvedPackages)
	}
	if r := w.ok("exec", "gui", "--", "dpkg-query", "-W", "-f", "${Version}", "hello"); r.stdout != lock.ResolvedPackages[0].Version {
		t.Errorf("installed hello %q, lock pins %q", r.stdout, lock.ResolvedPackages[0].Version)
	}
	if r := w.ok("exec", "gui", "--", "hello"); r.stdout != "Hello, world!\n" {
		t.Errorf("hello: %s", r)
	}
	home := ""
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	launcher := filepath.Join(home, ".local", "bin", "hello")
	if b, err := os.ReadFile(launcher); err != nil || !strings.Contains(string(b), id) {
		t.Errorf("launcher: %v\n%s", err, b)
	}
	var again buildResult
	w.jsonOK(&again, "build", "--locked", "karapace.toml")
	if again.EnvID != id {
		t.Errorf("locked build: id %s, want %s", again.EnvID, id)
	}
	w.ok("destroy", "gui")
	if _, err := os.Stat(launcher); !os.IsNotExist(err) {
		t.Errorf("launcher after destroy: %v", err)
	}
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}
