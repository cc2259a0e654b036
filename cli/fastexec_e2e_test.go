package cli

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/core"
)

// withEnv returns a copy of w whose runs add the given variables.
func (w *world) withEnv(kv ...string) *world {
	c := *w
	c.env = append(append([]string(nil), w.env...), kv...)
	return &c
}

// TestCLIFastExec: once an exec has gone through the engine, `karapace exec REF -- CMD`
// runs from the native fast path (KARAPACE_FASTEXEC=require turns a fall back into exit
// 125, which proves the path taken), behaves exactly as the full path, shows the
// environment Running while it runs, and is refused the moment its plan could be stale.
func TestCLIFastExec(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	mountsBefore := mounts(t)
	id := w.buildNamed("karapace.toml", "bb")
	fast := w.withEnv("KARAPACE_FASTEXEC=require")
	full := w.withEnv("KARAPACE_FASTEXEC=off")

	// No plan yet: the fast path declines.
	fast.fail(125, []string{"exec fast path not taken"}, "exec", "bb", "--", "/bin/true")
	w.ok("exec", "bb", "--", "/bin/true")
	w.ok("exec", id[:12], "--", "/bin/true") // remembers the short id too
	for _, ref := range []string{"bb", id, id[:12]} {
		if r := fast.ok("exec", ref, "--", "/bin/echo", "fast"); r.stdout != "fast\n" {
			t.Errorf("fast exec %s: %s", ref, r)
		}
	}
	// The store named by --store (the form exported app launchers use) wins over
	// $KARAPACE_STORE, as on the Go path.
	elsewhere := fast.withEnv("KARAPACE_STORE=" + filepath.Join(t.TempDir(), "other"))
	for _, args := range [][]string{{"--store", w.store}, {"--store=" + w.store}} {
		if r := elsewhere.ok(append(args, "exec", "bb", "--", "/bin/echo", "flag")...); r.stdout != "flag\n" {
			t.Errorf("fast exec with %v: %s", args, r)
		}
	}

	// The same sandbox either way: variables (the policy applied to this caller's),
	// hostname, ids, pid, devices, mounts (as a set: a session that joined the keeper
	// replaced its /proc, which moves it last), working directory.
	probe := []string{"exec", "bb", "--", "/bin/sh", "-c",
		"env | sort; hostname; id; echo pid $$; pwd; ls /dev; cut -d' ' -f2,3 /proc/mounts | sort; cat /proc/self/uid_map"}
	vars := []string{"LANG=C.UTF-8", "LC_TIME=C", "GITHUB_TOKEN=secret", "LC_Password=secret", "SSH_AUTH_SOCK=/x", "FOO=bar"}
	a := fast.withEnv(vars...).ok(probe...)
	b := full.withEnv(vars...).ok(probe...)
	if a.stdout != b.stdout {
		t.Errorf("fast and full paths differ:\n--- fast\n%s\n--- full\n%s", a.stdout, b.stdout)
	}
	if !strings.Contains(a.stdout, "LANG=C.UTF-8\n") || strings.Contains(a.stdout, "secret") ||
		strings.Contains(a.stdout, "SSH_AUTH_SOCK") || strings.Contains(a.stdout, "FOO=") {
		t.Errorf("variable policy on the fast path:\n%s", a.stdout)
	}
	if !strings.Contains(a.stdout, "pid 2\n") || !strings.Contains(a.stdout, "karapace-"+id[:12]) {
		t.Errorf("not the environment's own pid namespace or hostname:\n%s", a.stdout)
	}

	// Exit statuses, stdin, signals and launch errors match the full path.
	for _, c := range []struct {
		name  string
		stdin string
		argv  []string
	}{
		{"exit 7", "", []string{"/bin/sh", "-c", "exit 7"}},
		{"stdin", "piped\n", []string{"/bin/cat"}},
		{"killed", "", []string{"/bin/sh", "-c", "kill -TERM $$"}},
		{"not found", "", []string{"no-such-command"}},
		{"bad dir", "", []string{"/etc/passwd"}},
	} {
		args := append([]string{"exec", "bb", "--"}, c.argv...)
		a, b := fast.runStdin(c.stdin, args...), full.runStdin(c.stdin, args...)
		if a != b {
			t.Errorf("%s: fast and full paths differ:\n--- fast\n%s\n--- full\n%s", c.name, a, b)
		}
	}
	if r := fast.run("exec", "bb", "--", "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "no-such-command") {
		t.Errorf("launch error: %s", r)
	}

	// Running while a fast session is live; stop ends it; nothing is left behind.
	cmd := fast.cmd("exec", "bb", "--", "/bin/sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, 10*time.Second, "the fast session to show as running", func() bool {
		var e core.Env
		r := w.run("--json", "inspect", "bb")
		return r.code == 0 && decodeState(r.stdout, &e) && e.State == core.Running
	})
	w.fail(1, []string{"running"}, "destroy", "bb")
	w.ok("stop", "bb")
	select {
	case err := <-done:
		if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 143 {
			t.Errorf("stopped fast session: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("stop did not end the fast session")
	}
	var e core.Env
	w.jsonOK(&e, "inspect", "bb")
	if e.State != core.Built {
		t.Errorf("after stop: %v", e.State)
	}
	for _, d := range []string{"claims", "sessions"} {
		if ents, _ := os.ReadDir(filepath.Join(w.store, "env", id, d)); len(ents) != 0 {
			t.Errorf("%s left in %s", ents[0].Name(), d)
		}
	}

	// A changed host: a variable the plan depends on, the store lock held by a writer,
	// an operation to recover.
	fast.withEnv("DISPLAY=:99").fail(125, []string{"host variables changed"}, "exec", "bb", "--", "/bin/true")
	lock, err := os.OpenFile(filepath.Join(w.store, "store", ".lock"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	fast.fail(125, []string{"store lock busy"}, "exec", "bb", "--", "/bin/true")
	lock.Close()
	pending := filepath.Join(w.store, "store", "wal", "pending.json")
	// The WAL directory exists once an operation has logged an entry.
	if err := os.MkdirAll(filepath.Dir(pending), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pending, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	fast.fail(125, []string{"operations to recover"}, "exec", "bb", "--", "/bin/true")
	os.Remove(pending)
	fast.ok("exec", "bb", "--", "/bin/true")

	// A changed environment: renamed, frozen, destroyed.
	w.ok("rename", "bb", "bb2")
	fast.fail(125, []string{"environment changed"}, "exec", id, "--", "/bin/true")
	fast.fail(125, []string{"not taken"}, "exec", "bb2", "--", "/bin/true")
	w.fail(1, []string{"no environment matching"}, "exec", "bb", "--", "/bin/true")
	w.ok("exec", "bb2", "--", "/bin/true")
	fast.ok("exec", "bb2", "--", "/bin/true")
	fast.fail(125, []string{"not taken"}, "exec", "bb", "--", "/bin/true")
	w.ok("freeze", "bb2")
	fast.fail(125, []string{"environment changed"}, "exec", "bb2", "--", "/bin/true")
	w.ok("destroy", "bb2")
	fast.fail(125, []string{"no plan"}, "exec", id, "--", "/bin/true")
	w.ok("verify-store")
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}

func decodeState(s string, e *core.Env) bool {
	return json.Unmarshal([]byte(s), e) == nil
}

// TestCLIRelativeMountFromElsewhere: a relative mount resolves against the manifest's
// directory however the session is started: exec from another directory, through the
// engine and through the fast path, still binds the project's directory.
func TestCLIRelativeMountFromElsewhere(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \"namespace\"\n\n[mounts]\nproject = \"./data:/data\"\n")
	w.write("data/hello", "from the project\n")
	w.buildNamed("karapace.toml", "rel")
	elsewhere := *w
	elsewhere.dir = t.TempDir()
	if r := elsewhere.ok("exec", "rel", "--", "/bin/cat", "/data/hello"); r.stdout != "from the project\n" {
		t.Errorf("exec from another directory: %s", r)
	}
	fast := elsewhere.withEnv("KARAPACE_FASTEXEC=require")
	if r := fast.ok("exec", "rel", "--", "/bin/cat", "/data/hello"); r.stdout != "from the project\n" {
		t.Errorf("fast exec from another directory: %s", r)
	}
}

// TestCLIFastExecCorruptPlan: a damaged plan (truncated, or bytes flipped anywhere) never
// crashes or hangs the fast path: it falls back, or runs what the bytes say (the plan is
// the user's own file, trusted as much as the rest of the store); and without
// KARAPACE_FASTEXEC the command still works, through the engine, which rewrites it.
func TestCLIFastExecCorruptPlan(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	mountsBefore := mounts(t)
	id := w.buildNamed("karapace.toml", "bb")
	w.ok("exec", "bb", "--", "/bin/true")
	planPath := filepath.Join(w.store, "env", id, "fastexec")
	good, err := os.ReadFile(planPath)
	if err != nil {
		t.Fatal(err)
	}
	fast := w.withEnv("KARAPACE_FASTEXEC=require")
	rnd := rand.New(rand.NewPCG(1, uint64(len(good))))
	for i := 0; i < 60; i++ {
		bad := append([]byte(nil), good...)
		switch i % 3 {
		case 0:
			bad = bad[:rnd.IntN(len(bad))]
		case 1:
			bad[rnd.IntN(len(bad))] ^= byte(1 + rnd.IntN(255))
		case 2:
			for j := 0; j < 8; j++ {
				bad[rnd.IntN(len(bad))] = byte(rnd.IntN(256))
			}
		}
		if err := os.WriteFile(planPath, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		c := fast.cmd("exec", "bb", "--", "/bin/true")
		var errb strings.Builder
		c.Stderr = &errb
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		select {
		case err := <-done:
			ws, _ := c.ProcessState.Sys().(syscall.WaitStatus)
			if ws.Signaled() {
				t.Errorf("corruption %d: the fast path died of %v: %s", i, ws.Signal(), errb.String())
			}
			_ = err
		case <-time.After(20 * time.Second):
			_ = c.Process.Kill()
			<-done
			t.Fatalf("corruption %d: the fast path hung", i)
		}
	}
	if r := w.ok("exec", "bb", "--", "/bin/echo", "still works"); r.stdout != "still works\n" {
		t.Errorf("after corruption: %s", r)
	}
	if r := fast.ok("exec", "bb", "--", "/bin/echo", "fast again"); r.stdout != "fast again\n" {
		t.Errorf("the engine did not rewrite the plan: %s", r)
	}
	w.ok("destroy", "bb")
	if after := mounts(t); after != mountsBefore {
		t.Errorf("mounts changed:\nbefore:\n%s\nafter:\n%s", mountsBefore, after)
	}
}
