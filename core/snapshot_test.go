package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func upperOf(e *Engine, id schema.EnvID) string {
	return filepath.Join(e.Root(), "env", id.String(), "upper")
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	d, err := e.Diff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// A fresh mock env already shows its marker files as added (as the original).
	if want := []string{".karapace-mock", ".pkg-git"}; !reflect.DeepEqual(d.Added, want) || !d.HasDrift {
		t.Errorf("fresh env drift %+v", d)
	}
	upper := upperOf(e, id)
	if err := os.RemoveAll(upper); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(upper, 0o755); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Diff(ctx, id); err != nil || d.HasDrift {
		t.Errorf("cleared upper: %+v %v", d, err)
	}
	lower := filepath.Join(e.Root(), "env", id.String(), "lower")
	writeFiles(t, lower, map[string]string{"etc/conf": "a", "gone": "a"})
	writeFiles(t, upper, map[string]string{"etc/conf": "b", "new": "n", ".wh.gone": ""})
	d, err = e.Diff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := &Drift{EnvID: id, Added: []string{"new"}, Modified: []string{"etc/conf"}, Removed: []string{"gone"}, HasDrift: true}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff %+v, want %+v", d, want)
	}
}

func TestCommitRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	upper := upperOf(e, id)
	writeFiles(t, upper, map[string]string{"file.txt": "original", "dir/nested.txt": "nested"})
	key, err := e.Commit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := e.Commit(ctx, id); err != nil || again != key {
		t.Errorf("commit of unchanged content: %s %v (want %s)", again, err, key)
	}
	snaps, err := e.Snapshots(ctx, id)
	if err != nil || len(snaps) != 1 || snaps[0].Key != key {
		t.Fatalf("snapshots %+v %v", snaps, err)
	}
	writeFiles(t, upper, map[string]string{"file.txt": "modified", "extra.txt": "extra"})
	if err := e.Restore(ctx, id, key); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(upper, "file.txt")); string(b) != "original" {
		t.Errorf("file.txt = %q after restore", b)
	}
	if b, _ := os.ReadFile(filepath.Join(upper, "dir", "nested.txt")); string(b) != "nested" {
		t.Errorf("nested = %q after restore", b)
	}
	if exists(filepath.Join(upper, "extra.txt")) {
		t.Error("extra.txt survived restore")
	}
	if exists(upper+swapSuffix) || exists(filepath.Join(e.Root(), "store", "staging", "restore-"+id.String())) {
		t.Error("restore left its staging or old upper behind")
	}
	checkClean(t, e)
}

func TestRestoreErrorsKeepUpper(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	other := build(t, e, manifest(t, "clang"))
	otherKey, err := e.Commit(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, upperOf(e, id), map[string]string{"keep.txt": "x"})
	env := inspect(t, e, id)
	base, _ := schema.ParseDigest(env.BaseLayer)
	for name, tc := range map[string]struct {
		key   schema.Digest
		class error
	}{
		"missing snapshot":       {schema.SumString("nope"), store.ErrNotFound},
		"base layer":             {base, ErrInvalidTransition},
		"another env's snapshot": {otherKey, ErrInvalidTransition},
	} {
		if err := e.Restore(ctx, id, tc.key); !errors.Is(err, tc.class) {
			t.Errorf("%s: %v, want %v", name, err, tc.class)
		}
	}
	if b, err := os.ReadFile(filepath.Join(upperOf(e, id), "keep.txt")); err != nil || string(b) != "x" {
		t.Errorf("upper changed by failed restores: %q %v", b, err)
	}
	checkClean(t, e)
}

func TestSnapshotOrdering(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	keys := map[schema.Digest]bool{}
	for i := 0; i < 3; i++ {
		writeFiles(t, upperOf(e, id), map[string]string{fmt.Sprintf("f%d", i): "x"})
		k, err := e.Commit(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		keys[k] = true
	}
	s1, err := e.Snapshots(ctx, id)
	if err != nil || len(s1) != 3 || len(keys) != 3 {
		t.Fatalf("snapshots %d, keys %d, %v", len(s1), len(keys), err)
	}
	for i := 1; i < len(s1); i++ {
		if s1[i-1].ID.String() >= s1[i].ID.String() {
			t.Errorf("not sorted by id: %v", s1)
		}
	}
	s2, _ := e.Snapshots(ctx, id)
	if !reflect.DeepEqual(s1, s2) {
		t.Error("snapshot listing not stable")
	}
}

// TestWhiteoutsCommitted: deletions (kernel whiteouts) survive commit and restore.
func TestGCAndDryRun(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	var ids []schema.EnvID
	for i := 0; i < 5; i++ {
		ids = append(ids, build(t, e, manifest(t, fmt.Sprintf("pkg%d", i))))
	}
	keep, err := e.Commit(ctx, ids[4])
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids[:3] {
		if err := e.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// 200 orphan objects (the original used 1000; each costs two fsyncs here).
	objs := store.NewObjects(e.layout)
	for i := 0; i < 200; i++ {
		if _, err := objs.PutBytes(ctx, []byte(fmt.Sprintf("orphan-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	dry, err := e.GC(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	real, err := e.GC(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if real.RemovedObjects != len(dry.OrphanedObjects) || real.RemovedLayers != len(dry.OrphanedLayers) || real.RemovedEnvs != len(dry.OrphanedEnvs) {
		t.Errorf("dry run %+v does not match real run %+v", dry, real)
	}
	if real.RemovedObjects < 200 {
		t.Errorf("removed %d objects, want at least the 200 orphans", real.RemovedObjects)
	}
	for _, id := range ids[3:] {
		wantState(t, e, id, Built)
	}
	if err := e.Restore(ctx, ids[4], keep); err != nil {
		t.Errorf("snapshot of a live env collected: %v", err)
	}
	again, err := e.GC(ctx, false)
	if err != nil || again.RemovedObjects+again.RemovedLayers+again.RemovedEnvs != 0 {
		t.Errorf("second gc removed something: %+v %v", again, err)
	}
	checkClean(t, e)
}

func TestGCCancelled(t *testing.T) {
	e := newEngine(t)
	build(t, e, manifest(t, "git"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.GC(ctx, false); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled gc: %v", err)
	}
	checkClean(t, e)
}

func TestVerifyDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	rep, err := e.Verify(ctx)
	if err != nil || !rep.OK() || rep.Checked == 0 || rep.LayersChecked == 0 || rep.MetadataChecked == 0 {
		t.Fatalf("clean verify %+v %v", rep, err)
	}
	env := inspect(t, e, id)
	p := filepath.Join(e.Root(), "store", "objects", env.ManifestHash)
	if err := os.WriteFile(p, []byte("bitflip"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = e.Verify(ctx)
	if err != nil || rep.OK() {
		t.Errorf("corruption not detected: %+v %v", rep, err)
	}
}

// TestGCCancelledMidway: cancelling GC while it sweeps stops it between items; the
// report counts what went, the store stays consistent, and the next GC finishes.
func TestGCCancelledMidway(t *testing.T) {
	e := newEngine(t)
	keep := build(t, e, manifest(t, "git"))
	bg := context.Background()
	const orphans = 300
	for i := 0; i < orphans; i++ {
		if _, err := e.st.objects.PutBytes(bg, []byte(fmt.Sprintf("orphan-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := e.st.objects.List(bg)
	ctx, cancel := context.WithCancel(bg)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if now, _ := e.st.objects.List(bg); len(now) < len(before)-5 {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	rep, err := e.GC(ctx, false)
	if !errors.Is(err, context.Canceled) {
		t.Skipf("GC finished before the cancel landed (%v, %+v)", err, rep)
	}
	if rep == nil || rep.RemovedObjects == 0 || rep.RemovedObjects >= orphans {
		t.Errorf("partial report %+v", rep)
	}
	checkClean(t, e)
	rest, err := e.GC(bg, false)
	if err != nil || rep.RemovedObjects+rest.RemovedObjects != orphans {
		t.Errorf("second gc %+v %v (first removed %d)", rest, err, rep.RemovedObjects)
	}
	wantState(t, e, keep, Built)
}
