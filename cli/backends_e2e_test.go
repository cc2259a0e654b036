package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// The namespace backend through the CLI: a busybox image served by an LXC-layout server
// on loopback is downloaded, built, run, changed, snapshotted and destroyed, and nothing
// stays mounted.
func TestCLINamespaceBackend(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	mountsBefore := mounts(t)

	id := w.buildNamed("karapace.toml", "bb")
	if r := w.ok("exec", "bb", "--", "/bin/busybox", "echo", "hello from the namespace"); r.stdout != "hello from the namespace\n" {
		t.Errorf("exec: %s", r)
	}
	if r := w.run("exec", "bb", "--", "/bin/sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit 7: %s", r)
	}
	if r := w.runStdin("piped\n", "exec", "bb", "--", "/bin/cat"); r.stdout != "piped\n" {
		t.Errorf("exec stdin: %s", r)
	}
	w.ok("exec", "bb", "--", "/bin/sh", "-c", "echo data > /root/made-here && rm /etc/group")
	r := w.ok("diff", "bb")
	if !strings.Contains(r.stdout, "  + root/made-here") || !strings.Contains(r.stdout, "  - etc/group") {
		t.Errorf("diff after changes: %s", r)
	}
	var c commitResult
	w.jsonOK(&c, "commit", "bb")
	w.ok("exec", "bb", "--", "/bin/rm", "/root/made-here")
	w.ok("restore", "bb", c.SnapshotHash)
	if r := w.ok("exec", "bb", "--", "/bin/cat", "/root/made-here"); r.stdout != "data\n" {
		t.Errorf("after restore: %s", r)
	}
	w.ok("verify-store")

	// enter gives a real terminal: a shell with a tty, job control, and its exit status.
	x := startTmux(t, w, "enter", "bb")
	x.waitFor("the shell prompt", func(pane string) bool { return strings.Contains(pane, "#") })
	x.tmux("send-keys", "-t", "ui", "-l", "tty; cat /root/made-here; exit 3")
	x.tmux("send-keys", "-t", "ui", "Enter")
	if got := x.exitStatus(); got != 3 {
		t.Errorf("enter exited %d, want 3", got)
	}
	pane := x.tmux("capture-pane", "-p", "-t", "ui")
	if !strings.Contains(pane, "/dev/pts/") || !strings.Contains(pane, "data") {
		t.Errorf("the session had no terminal or the wrong layer:\n%s", pane)
	}
	var e core.Env
	w.jsonOK(&e, "inspect", "bb")
	if e.State != core.Built {
		t.Errorf("after the session: %v", e.State)
	}
	w.ok("destroy", "bb")
	if _, err := os.Stat(filepath.Join(w.store, "env", id)); !os.IsNotExist(err) {
		t.Errorf("destroy left the environment directory: %v", err)
	}
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}

// The OCI backend through the CLI (crun or runc, whichever the backend picks).
func TestCLIOCIBackend(t *testing.T) {
	if _, err := exec.LookPath("crun"); err != nil {
		if _, err := exec.LookPath("runc"); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatal("crun or runc is required under CI=true (crun is in .ci/packages)")
			}
			t.Skip("SKIPPING the OCI backend test: neither crun nor runc is installed")
		}
	}
	w := busyboxWorld(t, "oci")
	mountsBefore := mounts(t)
	w.buildNamed("karapace.toml", "bb")
	if r := w.ok("exec", "bb", "--", "/bin/busybox", "echo", "hello from oci"); r.stdout != "hello from oci\n" {
		t.Errorf("exec: %s", r)
	}
	if r := w.run("exec", "bb", "--", "/bin/sh", "-c", "exit 7"); r.code != 7 {
		t.Errorf("exec exit 7: %s", r)
	}
	w.ok("exec", "bb", "--", "/bin/sh", "-c", "echo data > /root/made-here")
	if r := w.ok("diff", "bb"); !strings.Contains(r.stdout, "  + root/made-here") {
		t.Errorf("diff: %s", r)
	}
	w.ok("destroy", "bb")
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}

// busyboxWorld is a world whose karapace.toml names a busybox image (served by an
// LXC-layout server on loopback as debian/bookworm) on the given backend.
func busyboxWorld(t *testing.T, backend string) *world {
	t.Helper()
	rootfs := testrootfs.Busybox(t)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball})
	w := newWorld(t)
	w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \""+backend+"\"\n")
	return w
}

// mounts is /proc/self/mounts minus nothing: the tests must leave it as they found it.
func mounts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
