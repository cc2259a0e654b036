package namespace

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

// builtSpec lays out a built environment over the busybox rootfs, as Build leaves it.
func builtSpec(t *testing.T) *runtime.Spec {
	t.Helper()
	e := newTestEnv(t)
	store := t.TempDir()
	env := filepath.Join(store, "env", testEnvID.String())
	if err := os.MkdirAll(filepath.Join(env, upperDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(e.lower, filepath.Join(env, lowerLink)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := RemoveWork(filepath.Join(env, workDir), nil); err != nil {
			t.Error(err)
		}
	})
	return &runtime.Spec{
		EnvID:     testEnvID,
		StoreRoot: store,
		EnvDir:    env,
		Manifest:  schema.Normalized{ManifestVersion: 1, BaseImage: "busybox", RuntimeBackend: "namespace"},
	}
}

// testBackend is the backend with a temporary home directory, so sessions (which bind
// the caller's home) never touch the real one.
func testBackend(t *testing.T) *Backend {
	home := t.TempDir()
	return New(BackendOptions{Host: func() sandbox.Host {
		h := sandbox.HostFromOS()
		h.Home = home
		h.Env["HOME"] = home
		return h
	}})
}

func TestBackendExecStatusStop(t *testing.T) {
	spec := builtSpec(t)
	b := testBackend(t)
	ctx := context.Background()
	var out bytes.Buffer
	code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"sh", "-c", "echo $KARAPACE_ENV; hostname; echo kept >/etc/kept"})
	if err != nil || code != 0 || out.String() != "1\nkarapace-"+testEnvID.Short()+"\n" {
		t.Fatalf("exec: code %d err %v out %q", code, err, out.String())
	}
	if st, err := b.Status(ctx, spec); err != nil || st.Running {
		t.Fatalf("status after exec: %+v %v", st, err)
	}
	if err := b.Stop(ctx, spec, time.Second); !errors.Is(err, runtime.ErrNotRunning) {
		t.Fatalf("stop of an idle environment: %v", err)
	}

	// Two live sessions; stop ends both (one ignores SIGTERM and needs SIGKILL).
	done := make(chan int, 2)
	ready := make(chan struct{}, 2)
	for _, script := range []string{"echo ready; exec sleep 60", "trap '' TERM; echo ready; while :; do sleep 0.05; done"} {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			buf := make([]byte, 16)
			_, _ = pr.Read(buf)
			pr.Close()
			ready <- struct{}{}
		}()
		go func() {
			code, _ := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: pw}, []string{"sh", "-c", script})
			pw.Close()
			done <- code
		}()
	}
	<-ready
	<-ready
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := b.Status(ctx, spec)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.PIDs) == 2 && st.Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed two sessions: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := b.Stop(ctx, spec, 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	codes := []int{<-done, <-done}
	if !(codes[0] == 143 && codes[1] == 137 || codes[0] == 137 && codes[1] == 143) {
		t.Errorf("session codes %v, want 143 (SIGTERM) and 137 (SIGKILL)", codes)
	}
	if st, _ := b.Status(ctx, spec); st.Running {
		t.Errorf("still running after stop: %+v", st)
	}
	checkNoChildren(t)

	// Frozen: the root is read-only for real.
	spec.ReadOnly = true
	out.Reset()
	code, err = b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"sh", "-c", "cat /etc/kept; touch /etc/new 2>/dev/null || echo read-only"})
	if err != nil || code != 0 || out.String() != "kept\nread-only\n" {
		t.Fatalf("frozen exec: code %d err %v out %q", code, err, out.String())
	}
	if err := b.Destroy(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(spec.EnvDir); err != nil {
		t.Fatalf("environment not deletable after Destroy: %v", err)
	}
}

func TestBackendNotBuilt(t *testing.T) {
	spec := &runtime.Spec{EnvID: testEnvID, StoreRoot: t.TempDir(), EnvDir: filepath.Join(t.TempDir(), "env")}
	_, err := New(BackendOptions{}).Exec(context.Background(), spec, runtime.Stdio{}, []string{"true"})
	if !errors.Is(err, runtime.ErrNotBuilt) {
		t.Fatalf("err %v, want ErrNotBuilt", err)
	}
}

// TestBackendBuildFromImage builds an environment from a local image tarball (the image
// cache extracts it into the store) and runs in it: Resolve, Build, Exec, Destroy.
func TestBackendBuildFromImage(t *testing.T) {
	e := newTestEnv(t)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", e.lower, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	store := t.TempDir()
	spec := &runtime.Spec{
		EnvID:     testEnvID,
		StoreRoot: store,
		EnvDir:    filepath.Join(store, "env", testEnvID.String()),
		Manifest:  schema.Normalized{ManifestVersion: 1, BaseImage: tarball, RuntimeBackend: "namespace"},
	}
	b := testBackend(t)
	ctx := context.Background()
	var progress []string
	spec.Progress = func(m string) { progress = append(progress, m) }
	res, err := b.Resolve(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BaseImageDigest) != 64 || len(res.ResolvedPackages) != 0 {
		t.Fatalf("resolution %+v", res)
	}
	if err := b.Build(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"sh", "-c", "head -n1 /etc/passwd; echo built >/etc/marker"})
	if err != nil || code != 0 || out.String() != "root:x:0:0:root:/root:/bin/sh\n" {
		t.Fatalf("exec: code %d err %v out %q", code, err, out.String())
	}
	if _, err := os.Stat(filepath.Join(spec.EnvDir, upperDir, "etc/marker")); err != nil {
		t.Error(err)
	}
	spec.Offline = true
	spec.Manifest.SystemPackages = []string{"git"}
	if _, err := b.Resolve(ctx, spec); !errors.Is(err, runtime.ErrOffline) {
		t.Errorf("offline resolve with packages: %v, want ErrOffline", err)
	}
	if err := b.Destroy(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(spec.EnvDir); err != nil {
		t.Fatal(err)
	}
}

// TestBackendEnterLoginShell: enter with no command gives a login shell on a terminal, in
// the home directory, and its exit status comes back.
func TestBackendEnterLoginShell(t *testing.T) {
	spec := builtSpec(t)
	b := testBackend(t)
	home := b.opts.Host().Home
	master, slave := openPTY(t)
	defer master.Close()
	defer slave.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, _ = master.Write([]byte("echo at:$(pwd) tty:$(tty); exit 5\r"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := b.Enter(ctx, spec, runtime.Stdio{Stdin: slave, Stdout: slave, Stderr: slave}, nil)
	slave.Close()
	<-done
	if err != nil || code != 5 {
		t.Fatalf("enter: code %d err %v output %q", code, err, out.String())
	}
	if got := out.String(); !strings.Contains(got, "at:"+home+" tty:/dev/pts/0") {
		t.Errorf("terminal output %q lacks the home directory and the pty", got)
	}
}

// debianTarballEnv hands the rootless child (see TestRootless) a readable Debian tarball.
const debianTarballEnv = "KARAPACE_TEST_DEBIAN_TARBALL"

// TestBackendAptInstall builds a Debian environment with a package, through the image
// cache and apt in the build sandbox; run as root, and as the unprivileged user by
// TestRootless (where the subordinate id range lets apt drop to _apt and chown).
func TestBackendAptInstall(t *testing.T) {
	requireNamespaces(t)
	tarball := os.Getenv(debianTarballEnv)
	if tarball == "" {
		tarball = testrootfs.DebianTarball(t, "bookworm")
	}
	store := t.TempDir()
	spec := &runtime.Spec{
		EnvID:     testEnvID,
		StoreRoot: store,
		EnvDir:    filepath.Join(store, "env", testEnvID.String()),
		Manifest:  schema.Normalized{ManifestVersion: 1, BaseImage: tarball, SystemPackages: []string{"hello"}, RuntimeBackend: "namespace"},
	}
	t.Cleanup(func() {
		if err := RemoveWork(filepath.Join(spec.EnvDir, workDir), nil); err != nil {
			t.Error(err)
		}
	})
	b := testBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	res, err := b.Resolve(ctx, spec)
	if err != nil {
		t.Fatalf("resolve: %v", err)
	}
	if len(res.ResolvedPackages) != 1 || res.ResolvedPackages[0].Name != "hello" || res.ResolvedPackages[0].Version == "" {
		t.Fatalf("resolution %+v", res)
	}
	spec.Packages = res.ResolvedPackages
	if err := b.Build(ctx, spec); err != nil {
		t.Fatalf("build: %v", err)
	}
	var out bytes.Buffer
	code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"hello"})
	if err != nil || code != 0 || out.String() != "Hello, world!\n" {
		t.Fatalf("hello: code %d err %v out %q", code, err, out.String())
	}
	if err := b.Destroy(ctx, spec); err != nil {
		t.Fatal(err)
	}
}
