package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
)

func mockFailOpts() mock.Options {
	return mock.Options{BuildHook: func(context.Context, *runtime.Spec) error {
		return errors.New("injected build failure")
	}}
}

// startSession runs a long mock session (a real `sleep` child) in the environment and
// waits until it is live. The returned function stops it and waits for Exec to return.
func startSession(t testing.TB, e *Engine, id schema.EnvID) func() {
	t.Helper()
	ctx := context.Background()
	done := make(chan error, 1)
	go func() {
		_, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"mock:sleep", "60"})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b := mock.New(mock.Options{})
		st, err := b.Status(ctx, &runtime.Spec{EnvID: id, EnvDir: e.layout.EnvPath(id)})
		if err == nil && st.Running {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("session ended before it was seen live: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("session did not start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	stopped := false
	return func() {
		if stopped {
			return
		}
		stopped = true
		if err := e.Stop(ctx, id); err != nil {
			t.Errorf("stop: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("session: %v", err)
		}
	}
}

// TestConcurrentSessions is the fix of spec 5.11: several sessions share one
// environment, it is Running while any is live, and the lock is not held meanwhile.
func TestConcurrentSessions(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t, func(o *Options) { o.LockTimeout = 2 * time.Second })
	id := build(t, e, manifest(t, "git"))
	other := build(t, e, manifest(t, "clang"))
	stop1 := startSession(t, e, id)
	wantState(t, e, id, Running)
	// A second session while the first runs.
	if st, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"true"}); err != nil || st != 0 {
		t.Fatalf("second session: %d %v", st, err)
	}
	wantState(t, e, id, Running)
	// Other mutations do not wait for the session (LockTimeout would fire).
	if err := e.Rename(ctx, other, "busy-neighbour"); err != nil {
		t.Fatalf("mutation during a session: %v", err)
	}
	stop1()
	wantState(t, e, id, Built)
	if err := e.Stop(ctx, id); !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("stop of a stopped env: %v", err)
	}
	checkClean(t, e)
}

// TestFreezeOutlastsSession: freezing a Running environment keeps it Frozen when the
// last session ends (the original silently undid the freeze).
func TestFreezeOutlastsSession(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	stop := startSession(t, e, id)
	if err := e.Freeze(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"true"}); !errors.Is(err, ErrInvalidTransition) {
		t.Errorf("exec in frozen env: %v", err)
	}
	stop()
	wantState(t, e, id, Frozen)
}

// TestStaleSessionRecovered: a session whose process died without cleaning up (a
// crashed frontend) does not leave the environment Running: with only a dead claim it
// reads as Built at once, and a record that says Running (written by an older version)
// is rewritten by recovery and by Stop.
func TestStaleSessionRecovered(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	forceRunningWithDeadClaim(t, e, id)
	wantState(t, e, id, Built)
	wantRecorded(t, e, id, Running)
	e2 := newEngineAt(t, e.Root()) // recovery in New
	wantRecorded(t, e2, id, Built)
	// And Stop on such an environment also settles it.
	forceRunningWithDeadClaim(t, e, id)
	if err := e.Stop(ctx, id); err != nil {
		t.Errorf("stop stale: %v", err)
	}
	wantRecorded(t, e, id, Built)
}

// TestRunningIsDerived: a live session makes the environment read as Running without
// any write to its record, and the record is untouched when the session ends.
func TestRunningIsDerived(t *testing.T) {
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	before, err := os.ReadFile(e.st.metaPath(id))
	if err != nil {
		t.Fatal(err)
	}
	stop := startSession(t, e, id)
	wantState(t, e, id, Running)
	wantRecorded(t, e, id, Built)
	envs, err := e.List(context.Background())
	if err != nil || len(envs) != 1 || envs[0].State != Running {
		t.Errorf("list during a session: %+v, %v", envs, err)
	}
	stop()
	wantState(t, e, id, Built)
	after, err := os.ReadFile(e.st.metaPath(id))
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("a session rewrote the record:\n%s\n%s", before, after)
	}
}

func wantRecorded(t *testing.T, e *Engine, id schema.EnvID, want State) {
	t.Helper()
	m, err := e.st.metaGetRecorded(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if m.State != want {
		t.Errorf("recorded state %s, want %s", m.State, want)
	}
}

func TestCancelledExec(t *testing.T) {
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the session is live (like ^C in the CLI).
		for ctx.Err() == nil {
			st, err := mock.New(mock.Options{}).Status(ctx, &runtime.Spec{EnvID: id, EnvDir: e.layout.EnvPath(id)})
			if err == nil && st.Running {
				cancel()
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	st, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"mock:sleep", "30"})
	if err != nil || st != 143 {
		t.Errorf("cancelled session: status %d err %v, want 143", st, err)
	}
	wantState(t, e, id, Built)
	checkClean(t, e)
}

// forceRunningWithDeadClaim makes an environment look like a crashed frontend left it:
// Running, with a claim of a process that no longer exists.
func forceRunningWithDeadClaim(t *testing.T, e *Engine, id schema.EnvID) {
	t.Helper()
	ctx := context.Background()
	m, err := e.st.metaGet(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.setState(ctx, m, Running); err != nil {
		t.Fatal(err)
	}
	dir := claimsDir(e.layout.EnvPath(id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// pid 1 exists, but not with this start time: a recycled pid.
	if err := os.WriteFile(filepath.Join(dir, "1.1"), []byte("1 999999999999"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGCPrunesExecRefs: gc removes the exec fast path's references to environments that
// are gone, and keeps those of live ones.
func TestGCPrunesExecRefs(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	gone := build(t, e, manifest(t, "git"))
	kept := build(t, e, manifest(t, "curl"))
	if err := e.Rename(ctx, gone, "gone"); err != nil {
		t.Fatal(err)
	}
	if err := e.Rename(ctx, kept, "kept"); err != nil {
		t.Fatal(err)
	}
	refs := filepath.Join(e.Root(), "env", refsDir)
	e.NoteExecRef(ctx, "gone", gone)
	e.NoteExecRef(ctx, gone.Short(), gone)
	e.NoteExecRef(ctx, "kept", kept)
	e.NoteExecRef(ctx, kept.Short(), kept)
	for _, r := range []string{"gone", gone.Short(), "kept", kept.Short()} {
		if !exists(filepath.Join(refs, r)) {
			t.Fatalf("reference %s was not noted", r)
		}
	}
	if err := os.WriteFile(filepath.Join(refs, "junk"), []byte("not an id\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := e.Destroy(ctx, gone); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GC(ctx, true); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(refs, "gone")) {
		t.Error("a dry run pruned a reference")
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	for r, want := range map[string]bool{"gone": false, gone.Short(): false, "junk": false, "kept": true, kept.Short(): true} {
		if exists(filepath.Join(refs, r)) != want {
			t.Errorf("reference %s: present %v after gc, want %v", r, !want, want)
		}
	}
}
