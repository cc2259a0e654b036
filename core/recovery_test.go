package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// TestEnvJSONIsTheStoredRecord: the JSON of an Env (what `inspect --json` prints) is
// byte for byte the metadata file, the original's EnvMetadata.
func TestEnvJSONIsTheStoredRecord(t *testing.T) {
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	if err := e.Rename(context.Background(), id, "named"); err != nil {
		t.Fatal(err)
	}
	env := inspect(t, e, id)
	got, err := schema.MarshalPretty(env)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(e.st.metaPath(id))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Env JSON:\n%s\nstored:\n%s", got, want)
	}
}

// TestRecoveryOnNew ports wal_recovery_cleans_orphaned_env_dir and
// wal_multi_entry_recovery: incomplete entries left by a dead process are rolled back
// when an Engine opens the store.
func TestRecoveryOnNew(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	keep := build(t, e, manifest(t, "git"))
	w := store.NewWAL(e.layout, nil, nil)
	var dirs []string
	for i := 0; i < 3; i++ {
		id := schema.SumString(string(rune('a' + i)))
		dir := e.layout.EnvPath(id)
		if err := os.MkdirAll(filepath.Join(dir, "upper"), 0o755); err != nil {
			t.Fatal(err)
		}
		op, err := w.Begin(ctx, store.OpBuild, id.String())
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddStep(ctx, op, store.RemoveDirStep(dir)); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	e2 := newEngineAt(t, e.Root())
	for _, d := range dirs {
		if exists(d) {
			t.Errorf("%s survived recovery", d)
		}
	}
	wantState(t, e2, keep, Built)
	checkClean(t, e2)
}

// TestCorruptMetadataIsNotNotFound is the fix of spec 5.3/5.20: a record that fails its
// checksum is a store error, shown by Verify, and blocks GC instead of letting it delete
// the environment's layers.
func TestCorruptMetadataIsNotNotFound(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	p := e.st.metaPath(id)
	b, _ := os.ReadFile(p)
	if err := os.WriteFile(p, bytes.Replace(b, []byte(`"ref_count": 1`), []byte(`"ref_count": 7`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := e.Inspect(ctx, id)
	if !errors.Is(err, ErrStore) || errors.Is(err, ErrNotFound) || !errors.Is(err, store.ErrIntegrity) {
		t.Errorf("inspect corrupt: %v", err)
	}
	rep, err := e.Verify(ctx)
	if err != nil || rep.OK() || rep.Failed[0].Kind != "metadata" {
		t.Errorf("verify: %+v %v", rep, err)
	}
	if _, err := e.GC(ctx, false); err == nil {
		t.Error("GC ran over corrupt metadata")
	}
	if envs, _ := e.List(ctx); len(envs) != 0 {
		t.Errorf("list shows a corrupt record: %v", envs)
	}
}

// TestDestroyWithoutManifestObject is the fix of spec 5.20: a missing manifest object
// or an unknown backend does not block destroy.
func TestDestroyWithoutManifestObject(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	m := inspect(t, e, id)
	if err := os.Remove(filepath.Join(e.layout.ObjectsDir(), m.ManifestHash)); err != nil {
		t.Fatal(err)
	}
	if err := e.Destroy(ctx, id); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if exists(e.layout.EnvPath(id)) {
		t.Error("env dir left")
	}
	other := build(t, e, manifest(t, "clang"))
	noBackends := newEngineAt(t, e.Root(), func(o *Options) { o.Backends = nil })
	if err := noBackends.Destroy(ctx, other); err != nil {
		t.Fatalf("destroy without the backend: %v", err)
	}
	checkClean(t, noBackends)
}

func TestEmptyStoreReads(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "nothing-here")
	e := newEngineAt(t, root)
	if envs, err := e.List(ctx); err != nil || len(envs) != 0 {
		t.Errorf("list: %v %v", envs, err)
	}
	if rep, err := e.Verify(ctx); err != nil || !rep.OK() {
		t.Errorf("verify: %+v %v", rep, err)
	}
	if rep, err := e.GC(ctx, true); err != nil || len(rep.OrphanedObjects) != 0 {
		t.Errorf("gc: %+v %v", rep, err)
	}
	if r, err := e.Migrate(ctx); err != nil || r.Status != MigrateNoStore {
		t.Errorf("migrate: %+v %v", r, err)
	}
	if exists(root) {
		t.Error("reads created the store")
	}
}

// TestStrayAndTempFiles ports store_integrity_after_partial_operations,
// crash_injection_partial_write_detected and incomplete_temp_file_invisible_to_store: a
// file whose content does not match its hash name is reported; a dot temp file is not.
func TestStrayAndTempFiles(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	build(t, e, manifest(t, "git"))
	before, err := e.Verify(ctx)
	if err != nil || !before.OK() {
		t.Fatalf("%+v %v", before, err)
	}
	fake := schema.SumString("what the name promises").String()
	if err := os.WriteFile(filepath.Join(e.layout.ObjectsDir(), fake), []byte("torn write"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.layout.ObjectsDir(), ".tmp123abc"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err := e.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != before.Checked+1 || rep.Passed != before.Passed || len(rep.Failed) != 1 || rep.Failed[0].Hash != fake {
		t.Errorf("verify %+v (before %+v)", rep, before)
	}
}
