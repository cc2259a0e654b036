package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
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
	// What the build installed (the mock's marker files) is the built state, not drift
	// (the original listed it as added).
	if d.HasDrift || len(d.Added)+len(d.Modified)+len(d.Removed) > 0 {
		t.Errorf("fresh env drift %+v", d)
	}
	upper := upperOf(e, id)
	lower := filepath.Join(e.Root(), "env", id.String(), "lower")
	writeFiles(t, lower, map[string]string{"etc/conf": "a", "gone": "a"})
	// Empty mount points a session made are not changes; the same files with content are.
	writeFiles(t, upper, map[string]string{"etc/hosts": "", "etc/resolv.conf": "", "etc/apt/apt.conf.d/99karapace-single-id": ""})
	if d, err := e.Diff(ctx, id); err != nil || d.HasDrift {
		t.Errorf("mount points: %+v %v", d, err)
	}
	writeFiles(t, upper, map[string]string{"etc/conf": "b", "new": "n", ".wh.gone": "", "etc/hosts": "127.0.0.1 x\n"})
	if err := os.Chmod(filepath.Join(upper, ".karapace-mock"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(upper, ".pkg-git")); err != nil {
		t.Fatal(err)
	}
	d, err = e.Diff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := &Drift{EnvID: id, Added: []string{"etc/hosts", "new"}, Modified: []string{".karapace-mock", "etc/conf"},
		Removed: []string{".pkg-git", "gone"}, HasDrift: true}
	if !reflect.DeepEqual(d, want) {
		t.Errorf("diff %+v, want %+v", d, want)
	}
	// A record without base layer content is compared with the image, as the original.
	m, err := e.st.metaGet(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	m.BaseLayer = ""
	if err := e.st.metaPut(ctx, m); err != nil {
		t.Fatal(err)
	}
	if d, err := e.Diff(ctx, id); err != nil || !reflect.DeepEqual(d.Added, []string{".karapace-mock", "etc/apt/apt.conf.d/99karapace-single-id", "etc/hosts", "etc/resolv.conf", "new"}) {
		t.Errorf("legacy diff %+v %v", d, err)
	}
}

func TestSnapshotNotesAndPrefixes(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	upper := upperOf(e, id)
	var keys []schema.Digest
	for i, msg := range []string{"first", ""} {
		writeFiles(t, upper, map[string]string{"f": strings.Repeat("x", i+1)})
		k, err := e.Commit(ctx, id, CommitOptions{Message: msg})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	snaps, err := e.Snapshots(ctx, id)
	if err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots %+v %v", snaps, err)
	}
	msgs := map[schema.Digest]string{}
	for _, s := range snaps {
		if s.CreatedAt == "" || s.Size <= 0 {
			t.Errorf("snapshot without time or size: %+v", s)
		}
		msgs[s.Key] = s.Message
	}
	if msgs[keys[0]] != "first" || msgs[keys[1]] != "" {
		t.Errorf("messages %v", msgs)
	}
	// Re-committing unchanged content without a message keeps the note.
	writeFiles(t, upper, map[string]string{"f": "x"})
	if k, err := e.Commit(ctx, id); err != nil || k != keys[0] {
		t.Fatalf("re-commit: %s %v", k, err)
	}
	if snaps, _ := e.Snapshots(ctx, id); snaps[0].Message+snaps[1].Message != "first" {
		t.Errorf("note lost on re-commit: %+v", snaps)
	}
	for _, k := range keys {
		common := 0
		other := keys[0]
		if k == keys[0] {
			other = keys[1]
		}
		for common < 64 && k.String()[common] == other.String()[common] {
			common++
		}
		got, err := e.ResolveSnapshot(ctx, id, k.String()[:common+1])
		if err != nil || got != k {
			t.Errorf("prefix %s: %s %v", k.String()[:common+1], got, err)
		}
		if got, err := e.ResolveSnapshot(ctx, id, k.String()); err != nil || got != k {
			t.Errorf("full key: %s %v", got, err)
		}
	}
	if _, err := e.ResolveSnapshot(ctx, id, ""); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("empty prefix: %v", err)
	}
	if _, err := e.ResolveSnapshot(ctx, id, "xyz"); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("non-hex prefix: %v", err)
	}
	miss := "0"
	for _, k := range keys {
		if strings.HasPrefix(k.String(), miss) {
			miss = "1"
		}
	}
	if _, err := e.ResolveSnapshot(ctx, id, miss); !errors.Is(err, ErrStore) || !errors.Is(err, store.ErrNotFound) {
		t.Errorf("no match: %v", err)
	}
	if keys[0].String()[0] == keys[1].String()[0] {
		if _, err := e.ResolveSnapshot(ctx, id, keys[0].String()[:1]); !errors.Is(err, ErrAmbiguous) {
			t.Errorf("ambiguous: %v", err)
		}
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
