package core

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
)

// slowBuild starts a build of path on an engine whose mock builds take delay, waits
// until the build has claimed its environment (it then runs without the store lock),
// and returns the channel its result arrives on.
func slowBuild(t *testing.T, root, path string, delay time.Duration) (schema.EnvID, <-chan error) {
	t.Helper()
	slow := newEngineAt(t, root, func(o *Options) { o.Backends = mockBackends(mock.Options{BuildDelay: delay}) })
	done := make(chan error, 1)
	go func() {
		_, err := slow.Build(context.Background(), path, BuildOptions{})
		done <- err
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, c := range readBuilds(slow.buildsDir()) {
			if c.live {
				return c.id, done
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the build never claimed its environment")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestBuildLeavesTheLockFree: while one environment builds, sessions and state
// changes of another, and a gc, run at once; the build then commits, and its base
// layer survived the gc (which ran while the layer was nobody's yet).
func TestBuildLeavesTheLockFree(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	e := newEngineAt(t, root, func(o *Options) { o.LockTimeout = 500 * time.Millisecond })
	other := build(t, e, manifest(t, "git"))
	building, done := slowBuild(t, root, manifest(t, "clang"), 2*time.Second)
	start := time.Now()
	if st, err := e.Exec(ctx, other, runtime.Stdio{}, []string{"mock:exit", "3"}); err != nil || st != 3 {
		t.Errorf("exec while another environment builds: %d %v", st, err)
	}
	if err := e.Freeze(ctx, other); err != nil {
		t.Errorf("freeze while another environment builds: %v", err)
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Errorf("gc while an environment builds: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("exec, freeze and gc took %v while a build ran", d)
	}
	select {
	case err := <-done:
		t.Fatalf("the build ended before the others ran (%v): the test proves nothing", err)
	default:
	}
	// The environment being built is not listed until it commits.
	if envs, _ := e.List(ctx); len(envs) != 1 {
		t.Errorf("list during the build: %d environments", len(envs))
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	m, err := e.Inspect(ctx, building)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := schema.ParseDigest(m.BaseLayer); err != nil || !e.st.layerComplete(ctx, k) {
		t.Errorf("base layer %q of the built environment is missing (%v)", m.BaseLayer, err)
	}
	if c := readBuilds(e.buildsDir()); len(c) != 0 {
		t.Errorf("build claims left: %+v", c)
	}
	checkClean(t, e)
}

// TestBuildClaimsItsEnvironment: while an environment is rebuilt (same id), its
// sessions and destroy wait for the build, within --lock-timeout, and then run.
func TestBuildClaimsItsEnvironment(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	path := manifest(t, "git")
	e := newEngineAt(t, root)
	id := build(t, e, path)
	_, done := slowBuild(t, root, path, time.Second)
	impatient := newEngineAt(t, root, func(o *Options) { o.LockTimeout = 200 * time.Millisecond })
	if _, err := impatient.Exec(ctx, id, runtime.Stdio{}, []string{"true"}); !errors.Is(err, ErrLockTimeout) {
		t.Errorf("exec of the environment being built, with a timeout: %v", err)
	}
	if _, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"true"}); err != nil {
		t.Errorf("exec after the build: %v", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	default:
		t.Error("exec ran before the build of its environment ended")
	}
	_, done = slowBuild(t, root, path, 500*time.Millisecond)
	if err := e.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("destroy did not wait for the build: %v", err)
	}
	checkClean(t, e)
}

// TestKilledBuildIsRecovered: a build whose process died (its claim is stale) left an
// environment directory without metadata; the next open removes it and the claim,
// although the recovery stamp was written while the build ran.
func TestKilledBuildIsRecovered(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	e := newEngineAt(t, root)
	keep := build(t, e, manifest(t, "git"))
	id := schema.SumString("killed build")
	if err := e.layout.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	// A claim of a process that is gone: pid 1's start time never matches "1 1".
	claim, err := addBuildClaim(e.buildsDir(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(claim, []byte("1 1"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(e.layout.UpperDir(id), 0o755); err != nil {
		t.Fatal(err)
	}
	e.markSettled()
	e2 := newEngineAt(t, root)
	if exists(e2.layout.EnvPath(id)) || exists(claim) {
		t.Errorf("a killed build's directory or claim survived the next open")
	}
	if _, err := e2.Inspect(ctx, keep); err != nil {
		t.Error(err)
	}
	checkClean(t, e2)
}
