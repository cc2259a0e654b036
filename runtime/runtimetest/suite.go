package runtimetest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/schema"
)

// Secret is a host variable no backend may pass into an environment (it is on the
// policy's deny list); Host plants it.
const Secret = "AWS_SECRET_ACCESS_KEY"

// Allowed is a host variable the policy lets through; Host plants it.
const Allowed = "LANG"

// Host is the host a backend under test should compute its plans from: the real one,
// with a temporary home (sessions bind the home; the real one stays untouched), a
// denied secret and an allowed variable.
func Host(t testing.TB) func() sandbox.Host {
	home := t.TempDir()
	return func() sandbox.Host {
		h := sandbox.HostFromOS()
		h.Home = home
		h.Env["HOME"] = home
		h.Env[Secret] = "leaked"
		h.Env[Allowed] = "C.UTF-8"
		return h
	}
}

// Env lays out a built environment over rootfs the way Build leaves it: an empty upper
// layer and a link to the image rootfs, in a fresh store.
func Env(t testing.TB, backend, rootfs, seed string) *runtime.Spec {
	t.Helper()
	store := t.TempDir()
	id := schema.SumString("karapace runtimetest " + seed)
	env := filepath.Join(store, "env", id.String())
	if err := os.MkdirAll(filepath.Join(env, "upper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rootfs, filepath.Join(env, "lower")); err != nil {
		t.Fatal(err)
	}
	return &runtime.Spec{
		EnvID:     id,
		StoreRoot: store,
		EnvDir:    env,
		Manifest:  schema.Normalized{ManifestVersion: 1, BaseImage: "busybox", RuntimeBackend: backend},
	}
}

// Exec runs argv in spec and returns its exit status and combined output.
func Exec(t testing.TB, b runtime.Backend, spec *runtime.Spec, stdin string, argv ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := b.Exec(context.Background(), spec, runtime.Stdio{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &out}, argv)
	if err != nil {
		t.Fatalf("exec %q: %v (output %q)", argv, err, out.String())
	}
	return code, out.String()
}

// Run runs the conformance suite against the backends newBackend makes (each built with
// Host(t) as its host), over rootfs: a busybox or Debian root filesystem with sh, cat,
// env, hostname and sleep.
func Run(t *testing.T, newBackend func(t *testing.T) runtime.Backend, rootfs string) {
	t.Run("ExitStatus", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		for _, c := range []struct {
			script string
			code   int
			out    string
		}{
			{"echo hello", 0, "hello\n"},
			{"exit 7", 7, ""},
		} {
			code, out := Exec(t, b, spec, "", "sh", "-c", c.script)
			if code != c.code || out != c.out {
				t.Errorf("%q: exit %d output %q, want %d %q", c.script, code, out, c.code, c.out)
			}
		}
		// stdout and stderr stay apart. (Their order relative to each other is not kept
		// by every runtime: runc copies each through a pipe of its own.)
		var stdout, stderr bytes.Buffer
		code, err := b.Exec(context.Background(), spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}, []string{"sh", "-c", "echo out; echo err >&2; exit 3"})
		if err != nil || code != 3 || stdout.String() != "out\n" || stderr.String() != "err\n" {
			t.Errorf("separate streams: exit %d %v, stdout %q stderr %q", code, err, stdout.String(), stderr.String())
		}
		// Killed by a signal from outside: 128+9. (The command may be the PID 1 of its
		// namespace, which ignores signals it sends itself, so it cannot kill itself.)
		ctx := context.Background()
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: pw, Stderr: pw}, []string{"sh", "-c", "echo ready; exec sleep 60"})
			if err != nil {
				t.Errorf("exec: %v", err)
			}
			pw.Close()
			done <- code
		}()
		if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("first line %q %v", line, err)
		}
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		st, err := b.Status(ctx, spec)
		if err != nil || len(st.PIDs) != 1 {
			t.Fatalf("status: %+v %v", st, err)
		}
		if err := syscall.Kill(st.PIDs[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if code := <-done; code != 137 {
			t.Errorf("killed session exited %d, want 137", code)
		}
		// A missing command is an error or a non-zero status, never success.
		if code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}, []string{"/no/such/command"}); err == nil && code == 0 {
			t.Errorf("a missing command exited 0")
		}
	})
	t.Run("Stdin", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		if code, out := Exec(t, b, spec, "ping\npong\n", "cat"); code != 0 || out != "ping\npong\n" {
			t.Errorf("cat: exit %d output %q", code, out)
		}
	})
	t.Run("WritesLandInUpper", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		if code, out := Exec(t, b, spec, "", "sh", "-c", "echo kept >/etc/karapace-kept && id -u"); code != 0 || out != "0\n" {
			t.Fatalf("write: exit %d output %q", code, out)
		}
		// The id mapping is the one the namespace backend uses: as many ranges, as many ids.
		want, err := sandbox.IDMaps(sandbox.IDSource{User: hostUser(), UID: uint32(os.Getuid()), GID: uint32(os.Getgid())})
		if err != nil {
			t.Fatal(err)
		}
		_, out := Exec(t, b, spec, "", "cat", "/proc/self/uid_map")
		if got := mapSizes(out); len(got) != len(want.UID) || got[len(got)-1] != want.UID[len(want.UID)-1].Size {
			t.Errorf("uid_map inside %q, want the ranges of %+v", out, want.UID)
		}
		got, err := os.ReadFile(filepath.Join(spec.EnvDir, "upper", "etc", "karapace-kept"))
		if err != nil || string(got) != "kept\n" {
			t.Fatalf("upper/etc/karapace-kept: %q %v", got, err)
		}
		if _, err := os.Stat(filepath.Join(rootfs, "etc", "karapace-kept")); err == nil {
			t.Fatal("the write reached the image rootfs")
		}
		if code, out := Exec(t, b, spec, "", "cat", "/etc/karapace-kept"); code != 0 || out != "kept\n" {
			t.Errorf("next session: exit %d output %q", code, out)
		}
	})
	t.Run("NetworkIsolation", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		spec.Manifest.NetworkIsolation = true
		code, out := Exec(t, b, spec, "", "cat", "/proc/net/dev")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		if ifs := interfaces(out); len(ifs) != 1 || ifs[0] != "lo" {
			t.Errorf("isolated interfaces %q, want only lo", ifs)
		}
		spec.Manifest.NetworkIsolation = false
		_, out = Exec(t, b, spec, "", "cat", "/proc/net/dev")
		if ifs := interfaces(out); len(ifs) < 2 {
			t.Errorf("without isolation the host's interfaces should show, got %q", ifs)
		}
	})
	t.Run("EnvAndHostname", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		code, out := Exec(t, b, spec, "", "sh", "-c", "env; echo host=$(hostname)")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, out)
		}
		want := "karapace-" + spec.EnvID.Short()
		for _, line := range []string{"KARAPACE_ENV=1", "HOSTNAME=" + want, Allowed + "=C.UTF-8", "host=" + want} {
			if !hasLine(out, line) {
				t.Errorf("missing %q in:\n%s", line, out)
			}
		}
		if strings.Contains(out, Secret) || strings.Contains(out, "leaked") {
			t.Errorf("the denied %s reached the environment:\n%s", Secret, out)
		}
	})
	t.Run("StopLongRunning", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		ctx := context.Background()
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: pw, Stderr: pw}, []string{"sh", "-c", "echo ready; exec sleep 60"})
			if err != nil {
				t.Errorf("exec: %v", err)
			}
			pw.Close()
			done <- code
		}()
		line, err := bufio.NewReader(pr).ReadString('\n')
		if err != nil || line != "ready\n" {
			t.Fatalf("first line %q %v", line, err)
		}
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		st, err := b.Status(ctx, spec)
		if err != nil || !st.Running || len(st.PIDs) != 1 {
			t.Fatalf("status of a running session: %+v %v", st, err)
		}
		// Even while a session runs, its root is mounted only in its own namespace.
		if mounts, err := os.ReadFile("/proc/self/mounts"); err != nil || strings.Contains(string(mounts), spec.StoreRoot) {
			t.Errorf("the running session's mounts show on the host (%v):\n%s", err, mounts)
		}
		start := time.Now()
		if err := b.Stop(ctx, spec, 500*time.Millisecond); err != nil {
			t.Fatalf("stop: %v", err)
		}
		select {
		case code := <-done:
			if code != 128+15 && code != 128+9 {
				t.Errorf("stopped session exited %d, want 143 or 137", code)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the session survived stop")
		}
		if d := time.Since(start); d > 15*time.Second {
			t.Errorf("stop took %v", d)
		}
		if st, err := b.Status(ctx, spec); err != nil || st.Running {
			t.Errorf("status after stop: %+v %v", st, err)
		}
		if err := b.Stop(ctx, spec, time.Second); !errors.Is(err, runtime.ErrNotRunning) {
			t.Errorf("stop of an idle environment: %v, want ErrNotRunning", err)
		}
	})
	t.Run("CancelForwardsSignal", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		defer NothingLeft(t, b, spec)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		pr, pw := io.Pipe()
		done := make(chan int, 1)
		go func() {
			code, _ := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: pw, Stderr: pw}, []string{"sh", "-c", "trap 'echo got-term; exit 3' TERM; echo ready; while :; do sleep 0.05; done"})
			pw.Close()
			done <- code
		}()
		r := bufio.NewReader(pr)
		if line, err := r.ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("first line %q %v", line, err)
		}
		cancel()
		rest, _ := io.ReadAll(r)
		select {
		case code := <-done:
			if code != 3 || !strings.Contains(string(rest), "got-term") {
				t.Errorf("cancelled session: exit %d output %q, want 3 after got-term", code, rest)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("the session survived cancellation")
		}
	})
	t.Run("Destroy", func(t *testing.T) {
		b := newBackend(t)
		spec := Env(t, b.Name(), rootfs, t.Name())
		ctx := context.Background()
		pr, pw := io.Pipe()
		done := make(chan struct{})
		go func() {
			_, _ = b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: pw, Stderr: pw}, []string{"sh", "-c", "echo ready; exec sleep 60"})
			pw.Close()
			close(done)
		}()
		if line, err := bufio.NewReader(pr).ReadString('\n'); err != nil || line != "ready\n" {
			t.Fatalf("first line %q %v", line, err)
		}
		go func() { _, _ = io.Copy(io.Discard, pr) }()
		if err := b.Destroy(ctx, spec); err != nil {
			t.Fatalf("destroy: %v", err)
		}
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("the session survived destroy")
		}
		NothingLeft(t, b, spec)
		// The backend leaves nothing in the store but the environment's layers.
		ents, _ := os.ReadDir(spec.StoreRoot)
		for _, e := range ents {
			if e.Name() != "env" {
				t.Errorf("destroy left %s in the store", e.Name())
			}
		}
		if ents, _ := os.ReadDir(filepath.Join(spec.EnvDir, "work")); len(ents) > 0 {
			t.Errorf("destroy left %d entries in the work directory", len(ents))
		}
	})
}

// NothingLeft fails t when the environment still runs, or anything under its store is
// mounted or is the working directory or command line of a process.
func NothingLeft(t testing.TB, b runtime.Backend, spec *runtime.Spec) {
	t.Helper()
	if st, err := b.Status(context.Background(), spec); err != nil || st.Running {
		t.Errorf("environment still running: %+v %v", st, err)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if strings.Contains(l, spec.StoreRoot) {
			t.Errorf("left mounted on the host: %s", l)
		}
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		cmdline, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		cwd, _ := os.Readlink(filepath.Join(p, "cwd"))
		if bytes.Contains(cmdline, []byte(spec.StoreRoot)) || strings.HasPrefix(cwd, spec.StoreRoot) {
			t.Errorf("process %s still uses the store: %q", filepath.Base(p), bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		}
	}
}

// interfaces are the interface names in /proc/net/dev.
func interfaces(procNetDev string) []string {
	var out []string
	for _, l := range strings.Split(procNetDev, "\n") {
		if name, _, ok := strings.Cut(l, ":"); ok && !strings.Contains(name, "|") {
			out = append(out, strings.TrimSpace(name))
		}
	}
	return out
}

func hasLine(s, line string) bool {
	for _, l := range strings.Split(s, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// mapSizes are the sizes of the lines of a uid_map.
func mapSizes(uidMap string) []uint32 {
	var out []uint32
	for _, l := range strings.Split(strings.TrimSpace(uidMap), "\n") {
		var a, b, c uint32
		if n, _ := fmt.Sscan(l, &a, &b, &c); n == 3 {
			out = append(out, c)
		}
	}
	return out
}

func hostUser() string {
	return sandbox.HostFromOS().User
}
