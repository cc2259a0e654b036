package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime/mock"
)

// TestConcurrentGoroutines: goroutines with their own Engines build, commit, restore
// and destroy on one store, and build one shared environment, at the same time.
func TestConcurrentGoroutines(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	shared := manifest(t, "shared")
	const workers, cycles = 4, 3
	var wg sync.WaitGroup
	errs := make(chan error, workers*cycles*5)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			e := newEngineAt(t, root)
			own := manifest(t, fmt.Sprintf("own%d", w))
			for i := 0; i < cycles; i++ {
				r, err := e.Build(ctx, own, BuildOptions{})
				if err != nil {
					errs <- err
					return
				}
				key, err := e.Commit(ctx, r.EnvID)
				if err == nil {
					err = e.Restore(ctx, r.EnvID, key)
				}
				if err == nil {
					err = e.Destroy(ctx, r.EnvID)
				}
				if err == nil {
					_, err = e.Build(ctx, shared, BuildOptions{})
				}
				if err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	e := newEngineAt(t, root)
	envs, _ := e.List(ctx)
	if len(envs) != 1 {
		t.Errorf("%d environments left, want only the shared one", len(envs))
	}
	checkClean(t, e)
}

// TestConcurrentProcesses: the same with separate processes.
func TestConcurrentProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	root, proj := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(proj, "shared"), 0o755); err != nil {
		t.Fatal(err)
	}
	manifestIn(t, filepath.Join(proj, "shared"), "shared")
	var cmds []*execCmd
	for i := 0; i < 3; i++ {
		cmds = append(cmds, &execCmd{startChild(t, "worker", root, proj, 3)})
		cmds = append(cmds, &execCmd{startChild(t, "exec", root, proj, 10)})
	}
	for _, c := range cmds {
		if err := c.Wait(); err != nil {
			t.Errorf("worker: %v", err)
		}
	}
	e := newEngineAt(t, root)
	envs, _ := e.List(context.Background())
	if len(envs) != 1 || envs[0].State != Built {
		t.Errorf("environments left: %+v, want only the shared one, Built", envs)
	}
	if len(envs) == 1 {
		if ents, _ := os.ReadDir(claimsDir(e.layout.EnvPath(envs[0].EnvID))); len(ents) != 0 {
			t.Errorf("session claims left: %v", ents)
		}
	}
	checkClean(t, e)
}

// TestLockWaitAndTimeout: a mutation waits for the lock, says so after LockNotice, and
// gives up after LockTimeout with ErrLockTimeout; without a timeout it gets through once
// the holder is done.
func TestLockWaitAndTimeout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	first := newEngineAt(t, root)
	id := build(t, first, manifest(t, "git"))
	// A build no longer holds the lock while it installs (see TestBuildLeavesTheLockFree),
	// so the holder here is the test itself, for 1.5 s.
	release, _, _, err := first.st.tryLock("test")
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(1500 * time.Millisecond)
		release()
		close(released)
	}()
	waitLockHeld(t, first)
	var notices atomic.Int32
	var seen LockWait
	var mu sync.Mutex
	impatient := newEngineAt(t, root, func(o *Options) {
		o.LockNotice = 50 * time.Millisecond
		o.LockTimeout = 300 * time.Millisecond
		o.OnLockWait = func(w LockWait) { notices.Add(1); mu.Lock(); seen = w; mu.Unlock() }
	})
	start := time.Now()
	err = impatient.Freeze(ctx, id)
	if !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("freeze while locked: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("gave up after %s, want about 300ms", d)
	}
	mu.Lock()
	if notices.Load() != 1 || seen.Op != "freeze" {
		t.Errorf("notices %d, last %+v", notices.Load(), seen)
	}
	mu.Unlock()
	// Readers do not wait.
	rstart := time.Now()
	if _, err := impatient.List(ctx); err != nil || time.Since(rstart) > 200*time.Millisecond {
		t.Errorf("list waited %s: %v", time.Since(rstart), err)
	}
	patient := newEngineAt(t, root)
	if err := patient.Freeze(ctx, id); err != nil {
		t.Errorf("patient freeze: %v", err)
	}
	<-released
	wantState(t, patient, id, Frozen)
}

// TestBuildCancelled: cancelling a build midway rolls it back completely.
func TestBuildCancelled(t *testing.T) {
	root := t.TempDir()
	e := newEngineAt(t, root, func(o *Options) { o.Backends = mockBackends(mock.Options{BuildDelay: 5 * time.Second}) })
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	_, err := e.Build(ctx, manifest(t, "git"), BuildOptions{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled build: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "env")); len(ents) != 0 {
		t.Errorf("cancelled build left %v", ents)
	}
	if envs, _ := e.List(context.Background()); len(envs) != 0 {
		t.Errorf("cancelled build left metadata")
	}
	checkClean(t, e)
}

// waitLockHeld waits until someone holds the store lock.
func waitLockHeld(t *testing.T, e *Engine) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		release, held, _, err := e.st.tryLock("probe")
		if err == nil {
			release()
		} else if held {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("nobody took the lock")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
