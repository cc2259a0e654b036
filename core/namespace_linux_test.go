//go:build linux

package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/namespace"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestEngineOnNamespaceBackend drives the whole lifecycle through the real namespace
// backend on a busybox image: build from a local image tarball, exec (files written,
// deleted: kernel whiteouts), diff, commit, restore (whiteouts restored), concurrent
// sessions with stop, destroy. It needs user namespaces and busybox-static; under
// CI=true a missing component fails the test.
func TestEngineOnNamespaceBackend(t *testing.T) {
	tarball, backend := namespaceFixture(t)
	root := t.TempDir()
	e := newEngineAt(t, root, func(o *Options) {
		o.Backends = map[string]func() runtime.Backend{"namespace": func() runtime.Backend { return backend }}
		o.StopGrace = time.Second
	})
	ctx := context.Background()
	path := writeManifestText(t, t.TempDir(), fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = %q\n", tarball))
	r, err := e.Build(ctx, path, BuildOptions{Name: "bb"})
	if err != nil {
		t.Fatal(err)
	}
	id := r.EnvID
	defer checkNoMountsUnder(t, root)

	run := func(script string) (int, string) {
		t.Helper()
		var out bytes.Buffer
		code, err := e.Exec(ctx, id, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"sh", "-c", script})
		if err != nil {
			t.Fatalf("exec %q: %v (output %q)", script, err, out.String())
		}
		return code, out.String()
	}
	if code, out := run("echo one >/etc/added; echo changed >/etc/passwd; rm /etc/group; cat /etc/passwd"); code != 0 || out != "changed\n" {
		t.Fatalf("exec: %d %q", code, out)
	}
	if code, _ := run("exit 7"); code != 7 {
		t.Errorf("exit status %d, want 7", code)
	}
	d, err := e.Diff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(d.Added, "etc/added") || !slices.Contains(d.Modified, "etc/passwd") || !slices.Contains(d.Removed, "etc/group") {
		t.Errorf("diff %+v", d)
	}
	key, err := e.Commit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	run("echo two >/etc/added; echo back >/etc/group")
	if err := e.Restore(ctx, id, key); err != nil {
		t.Fatal(err)
	}
	if code, out := run("cat /etc/added; test -e /etc/group || echo group-deleted"); code != 0 || out != "one\ngroup-deleted\n" {
		t.Errorf("after restore: %d %q", code, out)
	}

	// Two sessions at once; the environment is Running while they live; Stop ends them.
	done := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func() {
			code, err := e.Exec(ctx, id, runtime.Stdio{Stdin: strings.NewReader("")}, []string{"sleep", "300"})
			if err != nil {
				t.Errorf("session: %v", err)
			}
			done <- code
		}()
	}
	// Generous: on a loaded machine, two launches of a race-instrumented binary with
	// newuidmap can take many seconds.
	deadline := time.Now().Add(90 * time.Second)
	for {
		st, err := backend.Status(ctx, &runtime.Spec{EnvID: id, EnvDir: e.layout.EnvPath(id)})
		if err == nil && len(st.PIDs) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions did not start: %+v %v", st, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	wantState(t, e, id, Running)
	if err := e.Destroy(ctx, id); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("destroy while running: %v", err)
	}
	if err := e.Stop(ctx, id); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if code := <-done; code == 0 {
			t.Errorf("stopped session exited 0")
		}
	}
	wantState(t, e, id, Built)
	if err := e.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if exists(e.layout.EnvPath(id)) {
		t.Error("env dir left after destroy")
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	checkClean(t, e)
}

// checkNoMountsUnder fails if anything under dir is still mounted on the host.
func checkNoMountsUnder(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(dir)) {
		t.Errorf("mounts left under %s:\n%s", dir, b)
	}
}

// namespaceFixture is what the namespace end-to-end tests share: user namespaces (a
// failure under CI=true when missing), a busybox image tarball, and the real namespace
// backend with a home directory of the test's own.
func namespaceFixture(t *testing.T) (string, *namespace.Backend) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPING: namespace end-to-end test in -short mode")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REQUIRED COMPONENT MISSING (CI=true): user namespaces are disabled")
		}
		t.Skip("SKIPPING: user namespaces are disabled (this test fails under CI=true)")
	}
	rootfs := testrootfs.Busybox(t)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	home := t.TempDir()
	backend := namespace.New(namespace.BackendOptions{Host: func() sandbox.Host {
		h := sandbox.HostFromOS()
		h.Home = home
		h.Env["HOME"] = home
		return h
	}})
	return tarball, backend
}
