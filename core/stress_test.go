package core

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// TestStress ports the original's stress_test binary (spec 3.7) with few cycles:
// build, commit, destroy the same manifest over and over, GC every 10th cycle, a
// health check (integrity, WAL leaks) every 50th and at the end. KARAPACE_STRESS_CYCLES
// raises the count (the original ran 500).
func TestStress(t *testing.T) {
	cycles := 20
	if testing.Short() {
		cycles = 10
	}
	if n, err := strconv.Atoi(os.Getenv("KARAPACE_STRESS_CYCLES")); err == nil && n > 0 {
		cycles = n
	}
	ctx := context.Background()
	e := newEngine(t)
	path := manifest(t, "git", "clang")
	var buildT, commitT, destroyT, gcT time.Duration
	failures := 0
	health := func(c int) {
		rep, err := e.Verify(ctx)
		if err != nil || !rep.OK() {
			t.Errorf("cycle %d: integrity: %+v %v", c, rep, err)
			failures++
		}
		if n := walEntries(t, e.Root()); n != 0 {
			t.Errorf("cycle %d: WAL LEAK: %d stale entries", c, n)
			failures++
		}
	}
	for c := 1; c <= cycles; c++ {
		start := time.Now()
		r, err := e.Build(ctx, path, BuildOptions{})
		buildT += time.Since(start)
		if err != nil {
			t.Errorf("cycle %d: BUILD FAILED: %v", c, err)
			failures++
			continue
		}
		start = time.Now()
		if _, err := e.Commit(ctx, r.EnvID); err != nil {
			t.Errorf("cycle %d: COMMIT FAILED: %v", c, err)
		}
		commitT += time.Since(start)
		start = time.Now()
		if err := e.Destroy(ctx, r.EnvID); err != nil {
			t.Errorf("cycle %d: DESTROY FAILED: %v", c, err)
			failures++
			continue
		}
		destroyT += time.Since(start)
		if c%10 == 0 {
			start = time.Now()
			if _, err := e.GC(ctx, false); err != nil {
				t.Errorf("cycle %d: GC FAILED: %v", c, err)
				failures++
			}
			gcT += time.Since(start)
		}
		if c%50 == 0 {
			health(c)
		}
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	health(cycles)
	objs, _ := e.st.objects.List(ctx)
	layers, _ := e.st.layers.List(ctx)
	envs, _ := e.List(ctx)
	if len(envs) != 0 || len(objs) != 0 || len(layers) != 0 {
		t.Errorf("after destroying everything and GC: %d envs, %d objects, %d layers remain", len(envs), len(objs), len(layers))
	}
	per := func(d time.Duration) string {
		return fmt.Sprintf("%.3fs total, %.3fms avg", d.Seconds(), float64(d.Microseconds())/1000/float64(cycles))
	}
	t.Logf("%d cycles, %d failures; build: %s; commit: %s; destroy: %s; gc: %.3fs total",
		cycles, failures, per(buildT), per(commitT), per(destroyT), gcT.Seconds())
}

// Benchmarks of the original (spec 3.8), setup excluded from the timing.

func BenchmarkBuildMock2Pkg(b *testing.B) {
	ctx := context.Background()
	path := manifest(b, "git", "clang")
	for b.Loop() {
		b.StopTimer()
		e := newEngine(b)
		b.StartTimer()
		if _, err := e.Build(ctx, path, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRebuildUnchanged(b *testing.B) {
	ctx := context.Background()
	path := manifest(b, "git", "clang")
	e := newEngine(b)
	build(b, e, path)
	for b.Loop() {
		if _, err := e.Build(ctx, path, BuildOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func benchFiles(b *testing.B, e *Engine, id schema.EnvID, n int) {
	files := map[string]string{}
	for i := 0; i < n; i++ {
		files[fmt.Sprintf("file_%03d.txt", i)] = fmt.Sprintf("content %d", i)
	}
	writeFiles(b, e.layout.UpperDir(id), files)
}

func BenchmarkCommit100Files(b *testing.B) {
	ctx := context.Background()
	path := manifest(b, "git", "clang")
	for b.Loop() {
		b.StopTimer()
		e := newEngine(b)
		id := build(b, e, path)
		benchFiles(b, e, id, 100)
		b.StartTimer()
		if _, err := e.Commit(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRestoreSnapshot(b *testing.B) {
	ctx := context.Background()
	path := manifest(b, "git", "clang")
	e := newEngine(b)
	id := build(b, e, path)
	benchFiles(b, e, id, 50)
	key, err := e.Commit(ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := e.Restore(ctx, id, key); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGC50Envs(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		e := newEngine(b)
		if err := e.layout.Initialize(ctx); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			obj, err := e.st.objects.PutBytes(ctx, []byte(fmt.Sprintf("obj-%d", i)))
			if err != nil {
				b.Fatal(err)
			}
			id := schema.SumString(fmt.Sprintf("env_%04d", i))
			ref := uint32(1)
			if i >= 25 {
				ref = 0
			}
			m := store.Metadata{EnvID: id, ShortID: id.Short(), State: store.StateBuilt, ManifestHash: obj,
				CreatedAt: "2025-01-01T00:00:00Z", UpdatedAt: "2025-01-01T00:00:00Z", RefCount: ref}
			if err := e.st.envs.Put(ctx, m); err != nil {
				b.Fatal(err)
			}
		}
		for i := 0; i < 200; i++ {
			if _, err := e.st.objects.PutBytes(ctx, []byte(fmt.Sprintf("orphan-object-%d", i))); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		rep, err := e.GC(ctx, false)
		if err != nil || rep.RemovedEnvs != 25 || rep.RemovedObjects != 225 {
			b.Fatalf("gc %+v %v", rep, err)
		}
	}
}

func BenchmarkVerify200Objects(b *testing.B) {
	ctx := context.Background()
	e := newEngine(b)
	if err := e.layout.Initialize(ctx); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := e.st.objects.PutBytes(ctx, []byte(fmt.Sprintf("verify-object-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	for b.Loop() {
		rep, err := e.Verify(ctx)
		if err != nil || rep.Checked != 200 || !rep.OK() {
			b.Fatalf("verify %+v %v", rep, err)
		}
	}
}
