package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestCLITwoProjects: two projects with the same manifest (a Debian image, a package,
// `workspace = "./:/workspace"`) on the namespace backend stay two environments, each
// with its own /workspace; exec without a name runs in the project's environment;
// rebuild refuses to drop a snapshot and a changed writable layer, and says so.
func TestCLITwoProjects(t *testing.T) {
	tarball := testrootfs.DebianTarball(t, "bookworm")
	w := newWorld(t)
	text := "manifest_version = 1\n\n[base]\nimage = \"" + tarball + "\"\n\n[system]\npackages = [\"hello\"]\n\n" +
		"[mounts]\nworkspace = \"./:/workspace\"\n\n[runtime]\nbackend = \"namespace\"\n"
	a, b := *w, *w
	a.dir, b.dir = filepath.Join(w.dir, "a"), filepath.Join(w.dir, "b")
	for name, p := range map[string]*world{"a": &a, "b": &b} {
		p.write("karapace.toml", text)
		p.write("marker", name+"\n")
	}
	idA := a.buildNamed("karapace.toml", "a")
	idB := b.buildNamed("karapace.toml", "b")
	if idA == idB {
		t.Fatalf("two projects share environment %s", idA)
	}
	for name, id := range map[string]string{"a": idA, "b": idB} {
		if out := w.ok("inspect", name).stdout; !strings.Contains(out, id) {
			t.Errorf("inspect %s does not show %s:\n%s", name, id, out)
		}
	}
	for name, p := range map[string]*world{"a": &a, "b": &b} {
		if r := w.ok("exec", name, "--", "cat", "/workspace/marker"); r.stdout != name+"\n" {
			t.Errorf("exec %s: /workspace/marker is %q", name, r.stdout)
		}
		// No name: the environment of the manifest in the current directory.
		if r := p.ok("exec", "--", "cat", "/workspace/marker"); r.stdout != name+"\n" {
			t.Errorf("exec in project %s: /workspace/marker is %q", name, r.stdout)
		}
	}
	sub := &a
	sub.write("src/.keep", "")
	inSub := *sub
	inSub.dir = filepath.Join(a.dir, "src")
	if r := inSub.ok("exec", "--", "hello"); r.stdout != "Hello, world!\n" {
		t.Errorf("exec hello from a subdirectory: %s", r)
	}

	// Rebuild's warning: a change in the writable layer and a snapshot.
	a.ok("exec", "--", "sh", "-c", "echo mine > /root/notes")
	a.ok("commit", "a")
	r := a.fail(1, []string{"rebuild refused", "'a' (" + idA[:12] + ")", "1 snapshot", "writable layer", "--force"}, "rebuild")
	if r.stdout != "" {
		t.Errorf("refused rebuild printed %q", r.stdout)
	}
	if got := a.ok("exec", "--", "cat", "/root/notes").stdout; got != "mine\n" {
		t.Errorf("after the refused rebuild /root/notes is %q", got)
	}
	if _, err := os.Stat(filepath.Join(a.dir, "karapace.lock")); err != nil {
		t.Error(err)
	}
}
