package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestCLIRootless runs a whole session of the binary as the unprivileged CI user
// (.ci/test-user): Karapace needs no root, and the store it writes belongs to the user.
func TestCLIRootless(t *testing.T) {
	u := testrootfs.RootlessUser(t)
	uid, gid := u.UID, u.GID
	w := userWorld(t, u)

	w.ok("new", "demo", "--template", "minimal")
	// The template uses the namespace backend; switch it to mock for this suite.
	w.manifest("karapace.toml", "rolling", "git")
	w.ok("build", "--name", "demo")
	if r := w.ok("exec", "demo", "--", "mock:exit", "0"); !strings.Contains(r.stdout, "mock-exec: mock:exit 0") {
		t.Errorf("exec: %s", r)
	}
	w.ok("commit", "demo")
	// The build's own files are the built state, not drift.
	if r := w.ok("diff", "demo"); !strings.Contains(r.stdout, "no drift detected") {
		t.Errorf("diff: %s", r)
	}
	var envs []core.Env
	if r := w.ok("--json", "list"); json.Unmarshal([]byte(r.stdout), &envs) != nil || len(envs) != 1 {
		t.Errorf("list: %s", r)
	}
	w.ok("verify-store")
	w.ok("gc")
	w.ok("destroy", "demo")

	// The namespace backend, rootless: download, build, run, destroy.
	rootfs := testrootfs.Busybox(t)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball})
	w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
	w.write("ns.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \"namespace\"\n")
	w.ok("build", "ns.toml", "--name", "ns")
	if r := w.ok("exec", "ns", "--", "/bin/sh", "-c", "echo rootless > /root/f && cat /root/f"); r.stdout != "rootless\n" {
		t.Errorf("rootless namespace exec: %s", r)
	}
	// The native fast path, rootless: it maps the user's subordinate range through
	// newuidmap as the engine does, so a file chowned to another id works the same.
	probe := []string{"exec", "ns", "--", "/bin/sh", "-c", "cat /proc/self/uid_map; touch /root/g && chown 42:42 /root/g && stat -c %u:%g /root/g"}
	fast := w.withEnv("KARAPACE_FASTEXEC=require").ok(probe...)
	full := w.withEnv("KARAPACE_FASTEXEC=off").ok(probe...)
	if fast.stdout != full.stdout || !strings.Contains(fast.stdout, "42:42") {
		t.Errorf("rootless fast exec:\n--- fast\n%s\n--- full\n%s", fast, full)
	}
	// The fast session left a keeper; the next ones join it (the same user namespace,
	// with its wide id map) and behave the same.
	plans, _ := filepath.Glob(filepath.Join(w.store, "env", "*", "fastexec"))
	if len(plans) != 1 {
		t.Fatalf("fast-path plans: %v", plans)
	}
	k := keeperOf(t, filepath.Dir(plans[0]), true)
	userns := []string{"exec", "ns", "--", "/bin/readlink", "/proc/self/ns/user"}
	a := w.withEnv("KARAPACE_FASTEXEC=require").ok(userns...)
	b := w.withEnv("KARAPACE_FASTEXEC=require").ok(userns...)
	if kns := keeperUserNS(t, k) + "\n"; a.stdout != kns || b.stdout != kns {
		t.Errorf("rootless sessions did not join the keeper (%q): %q, %q", kns, a.stdout, b.stdout)
	}
	if joined := w.withEnv("KARAPACE_FASTEXEC=require").ok(probe...); joined.stdout != full.stdout {
		t.Errorf("rootless joined exec:\n--- joined\n%s\n--- full\n%s", joined, full)
	}
	w.ok("destroy", "ns")
	waitGone(t, k.PID)

	// Everything in the store belongs to the user.
	err := filepath.Walk(w.store, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && (int(st.Uid) != uid || int(st.Gid) != gid) {
			t.Errorf("%s is owned by %d:%d, not the user", p, st.Uid, st.Gid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
