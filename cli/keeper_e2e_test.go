package cli

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime/namespace"
)

// keeperOf waits (up to 5 s) for the environment's keeper to show up, or, with
// want false, to be gone.
func keeperOf(t *testing.T, envDir string, want bool) namespace.Keeper {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		k, ok, err := namespace.FindKeeper(envDir)
		if err != nil {
			t.Fatal(err)
		}
		if ok == want {
			return k
		}
		if time.Now().After(deadline) {
			t.Fatalf("keeper of %s: present %v, want %v", envDir, ok, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// releaseKeepers ends every keeper of the world's store: the tests stop what they
// started, by pid, before their directories go.
func releaseKeepers(t *testing.T, store string) {
	dirs, _ := filepath.Glob(filepath.Join(store, "env", "*"))
	for _, d := range dirs {
		if err := namespace.ReleaseKeeper(context.Background(), d); err != nil {
			t.Errorf("release keeper of %s: %v", d, err)
		}
	}
}

// nsProbe prints what tells namespaces apart: the user and mount namespace, the pid
// of the shell, how many processes it sees and the hostname.
var nsProbe = []string{"exec", "bb", "--", "/bin/sh", "-c",
	"readlink /proc/self/ns/user; readlink /proc/self/ns/mnt; echo pid $$; set -- /proc/[0-9]*; echo $#; hostname; cat /kept 2>/dev/null; true"}

// TestCLIKeeper: the first fast-path exec leaves a keeper holding the environment's
// root; later ones join it (the same user namespace and root, a mount and PID namespace
// and /proc of their own); a changed bind source, a restore, a freeze, stop and destroy
// each end or bypass it; and it leaves on its own when idle.
func TestCLIKeeper(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	mountsBefore := mounts(t)
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \"namespace\"\n\n[mounts]\nproject = \"./data:/data\"\n")
	w.write("data/hello", "one\n")
	id := w.buildNamed("karapace.toml", "bb")
	envDir := filepath.Join(w.store, "env", id)
	w.ok("exec", "bb", "--", "/bin/true") // the Go path writes the plan; no keeper
	if _, ok, _ := namespace.FindKeeper(envDir); ok {
		t.Fatal("the Go path left a keeper")
	}
	fast := w.withEnv("KARAPACE_FASTEXEC=require")

	first := strings.Split(fast.ok(nsProbe...).stdout, "\n")
	k := keeperOf(t, envDir, true)
	second := strings.Split(fast.ok(nsProbe...).stdout, "\n")
	third := strings.Split(fast.ok(nsProbe...).stdout, "\n")
	if k2 := keeperOf(t, envDir, true); k2 != k {
		t.Fatalf("the keeper changed between joins: %+v, then %+v", k, k2)
	}
	if cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(k.PID), "cmdline")); err != nil ||
		!strings.HasPrefix(string(cmdline), "karapace keeper "+id[:12]+"\x00") {
		t.Errorf("the keeper's command line: %q, %v", cmdline, err)
	}
	// The keeper is alive, so its namespace's inode number cannot have been reused.
	kns := keeperUserNS(t, k)
	if first[0] != kns || second[0] != kns || third[0] != kns {
		t.Errorf("sessions are not in the keeper's user namespace %q: %q %q %q", kns, first[0], second[0], third[0])
	}
	// (A namespace's inode number is reused once it is gone: second and third may match.)
	if second[1] == first[1] || third[1] == first[1] {
		t.Errorf("joined sessions share a mount namespace: %q %q %q", first[1], second[1], third[1])
	}
	for i, out := range [][]string{first, second, third} {
		if out[2] != "pid 2" || out[4] != "karapace-"+id[:12] {
			t.Errorf("session %d: not its own PID namespace or hostname: %q", i, out)
		}
		// init and the shell (whose glob forks nothing): nothing of another session
		if out[3] != "2" {
			t.Errorf("session %d sees %s processes, want 2 (its own): %q", i, out[3], out)
		}
	}
	// Same root: a joined session writes, the next one (and the full path) reads it.
	fast.ok("exec", "bb", "--", "/bin/sh", "-c", "echo kept > /kept")
	if r := w.withEnv("KARAPACE_FASTEXEC=off").ok("exec", "bb", "--", "/bin/cat", "/kept"); r.stdout != "kept\n" {
		t.Errorf("a write in a joined session is not in the environment: %s", r)
	}
	if r := fast.ok("exec", "bb", "--", "/bin/cat", "/data/hello"); r.stdout != "one\n" {
		t.Errorf("bind mount in a joined session: %s", r)
	}

	// A bind source replaced by another directory: the kept bind shows the old one,
	// so the next session builds a root of its own and its holder keeps that instead.
	data := filepath.Join(w.dir, "data")
	if err := os.Rename(data, data+".old"); err != nil {
		t.Fatal(err)
	}
	w.write("data/hello", "two\n")
	if r := fast.ok("exec", "bb", "--", "/bin/cat", "/data/hello"); r.stdout != "two\n" {
		t.Errorf("after the bind source was replaced: %s", r)
	}
	k3 := keeperOf(t, envDir, true)
	if k3 == k {
		t.Errorf("the stale keeper %+v was kept", k)
	}
	waitGone(t, k.PID)
	after := strings.Split(fast.ok(nsProbe...).stdout, "\n")
	if kns3 := keeperUserNS(t, k3); after[0] != kns3 {
		t.Errorf("the next session did not join the new keeper %q: %q", kns3, after[0])
	}

	// A restore ends the keeper: the kept root shows the upper it replaces.
	snap := strings.Fields(w.ok("commit", "bb").stdout) // committed snapshot <hash> for bb
	fast.ok("exec", "bb", "--", "/bin/sh", "-c", "echo later > /later")
	keeperOf(t, envDir, true)
	if len(snap) < 3 {
		t.Fatalf("commit printed %q", snap)
	}
	w.ok("restore", "bb", snap[2])
	keeperOf(t, envDir, false)
	if r := fast.ok("exec", "bb", "--", "/bin/sh", "-c", "cat /later 2>&1; cat /kept"); strings.Contains(r.stdout, "later\n") || !strings.Contains(r.stdout, "kept\n") {
		t.Errorf("after restore: %s", r)
	}

	// stop ends it (there is no session), and so does freezing.
	keeperOf(t, envDir, true)
	w.run("stop", "bb")
	keeperOf(t, envDir, false)
	fast.ok("exec", "bb", "--", "/bin/true")
	keeperOf(t, envDir, true)
	w.ok("freeze", "bb")
	keeperOf(t, envDir, false)
	w.fail(1, nil, "exec", "bb", "--", "/bin/true") // frozen: refused on every path

	if got := mounts(t); got != mountsBefore {
		t.Errorf("mounts changed:\n%s\n---\n%s", mountsBefore, got)
	}
}

// TestCLIKeeperIdleAndDestroy: a keeper leaves KARAPACE_KEEP_ALIVE seconds after the
// last session, not while one runs; one killed is replaced; destroy ends it; 0 disables
// keepers.
func TestCLIKeeperIdleAndDestroy(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	id := w.buildNamed("karapace.toml", "bb")
	envDir := filepath.Join(w.store, "env", id)
	w.ok("exec", "bb", "--", "/bin/true")

	off := w.withEnv("KARAPACE_FASTEXEC=require", "KARAPACE_KEEP_ALIVE=0")
	off.ok("exec", "bb", "--", "/bin/true")
	time.Sleep(200 * time.Millisecond)
	if _, ok, _ := namespace.FindKeeper(envDir); ok {
		t.Fatal("KARAPACE_KEEP_ALIVE=0 left a keeper")
	}

	short := w.withEnv("KARAPACE_FASTEXEC=require", "KARAPACE_KEEP_ALIVE=1")
	short.ok("exec", "bb", "--", "/bin/true")
	k := keeperOf(t, envDir, true)
	// A joined session that outlives the idle time keeps it.
	done := make(chan result, 1)
	go func() { done <- short.run("exec", "bb", "--", "/bin/sleep", "3") }()
	time.Sleep(2500 * time.Millisecond)
	if k2, ok, _ := namespace.FindKeeper(envDir); !ok || k2 != k {
		t.Errorf("the keeper left while a joined session ran")
	}
	if r := <-done; r.code != 0 {
		t.Errorf("joined sleep: %s", r)
	}
	keeperOf(t, envDir, false) // within about a second of idleness
	waitGone(t, k.PID)

	// A keeper killed by a signal leaves its record (and a zombie until it is reaped):
	// the next session builds a root of its own, whose holder replaces the record.
	fast := w.withEnv("KARAPACE_FASTEXEC=require")
	fast.ok("exec", "bb", "--", "/bin/true")
	k = keeperOf(t, envDir, true)
	if err := syscall.Kill(k.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitGone(t, k.PID)
	if r := fast.ok("exec", "bb", "--", "/bin/echo", "after"); r.stdout != "after\n" {
		t.Errorf("exec after the keeper was killed: %s", r)
	}
	k2 := keeperOf(t, envDir, true)
	if k2 == k {
		t.Errorf("the killed keeper's record was kept")
	}
	w.ok("destroy", "bb")
	waitGone(t, k2.PID)
}

// keeperUserNS is the user namespace of a live keeper, as readlink shows it.
func keeperUserNS(t *testing.T, k namespace.Keeper) string {
	t.Helper()
	ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(k.PID), "ns", "user"))
	if err != nil {
		t.Fatalf("keeper %d: %v", k.PID, err)
	}
	return ns
}

// waitGone waits (up to 5 s) until pid has exited.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for i := 0; i < 250; i++ {
		b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Errorf("process %d is still there", pid)
}
