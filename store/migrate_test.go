package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// v1Store writes a version 1 store by hand: metadata without name, policy_layer and
// checksum, plus an object and a layer.
func v1Store(t *testing.T, ids ...string) (string, []schema.Digest) {
	t.Helper()
	root := t.TempDir()
	l := store.NewLayout(root)
	for _, d := range []string{l.ObjectsDir(), l.LayersDir(), l.MetadataDir(), l.StagingDir(), l.EnvDir()} {
		_ = os.MkdirAll(d, 0o755)
	}
	_ = os.WriteFile(l.VersionFile(), []byte("{\n  \"format_version\": 1\n}"), 0o644)
	var out []schema.Digest
	base, err := v1Layer().Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ids {
		id := schema.SumString(s)
		out = append(out, id)
		doc := `{"env_id":"` + id.String() + `","short_id":"` + id.Short() + `","state":"Built","manifest_hash":"` + d("m").String() +
			`","base_layer":"` + base.String() + `","dependency_layers":[],"created_at":"2024-01-01T00:00:00Z","updated_at":"2024-01-02T00:00:00Z","ref_count":1}`
		_ = os.WriteFile(filepath.Join(l.MetadataDir(), id.String()), []byte(doc), 0o644)
	}
	return root, out
}

// v1Layer is the base layer v1Store's records name: over the object "object".
func v1Layer() store.Layer {
	obj := schema.SumString("object")
	return store.Layer{Hash: obj, Kind: store.KindBase, ObjectRefs: []schema.Digest{obj}, ReadOnly: true, TarHash: obj}
}

func TestMigrateV1StoreToV2(t *testing.T) {
	ctx := context.Background()
	root, ids := v1Store(t, "one", "two")
	s := store.New(root, store.Options{})
	// What the records refer to, so that the migrated store verifies clean.
	obj, _ := s.Objects.PutBytes(ctx, []byte("object"))
	_, _ = s.Objects.PutBytes(ctx, []byte("m"))
	layer, _ := s.Layers.Put(ctx, v1Layer())
	if err := s.Layout.Initialize(ctx); !errors.Is(err, store.ErrVersionMismatch) {
		t.Fatalf("v1 store opened without migration: %v", err)
	}
	res, err := store.Migrate(ctx, root, fixedClock, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res == nil || res.FromVersion != 1 || res.ToVersion != 2 || res.EnvironmentsMigrated != 2 || !strings.HasSuffix(res.BackupPath, "version.backup.20250101T120000Z") {
		t.Fatalf("result %+v", res)
	}
	if b, _ := os.ReadFile(res.BackupPath); !strings.Contains(string(b), `"format_version": 1`) {
		t.Fatalf("backup holds %q", b)
	}
	if err := s.Layout.VerifyVersion(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		m, err := s.Envs.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.State != store.StateBuilt || m.Name != "" || !m.PolicyLayer.IsZero() || m.Checksum.IsZero() ||
			m.CreatedAt != "2024-01-01T00:00:00Z" || m.UpdatedAt != "2024-01-02T00:00:00Z" || m.ManifestHash != d("m") || m.RefCount != 1 {
			t.Fatalf("migrated record %+v", m)
		}
		raw, _ := os.ReadFile(s.Envs.Path(id))
		if !strings.HasPrefix(string(raw), "{\n  \"env_id\"") || !strings.Contains(string(raw), `"name": null`) {
			t.Fatalf("migrated record not in field order:\n%s", raw)
		}
	}
	if ok, _ := s.Objects.Exists(ctx, obj); !ok {
		t.Fatal("object lost")
	}
	if ok, _ := s.Layers.Exists(ctx, layer); !ok {
		t.Fatal("layer lost")
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify after migration: %+v %v", rep, err)
	}
	if again, err := store.Migrate(ctx, root, fixedClock, nil); err != nil || again != nil {
		t.Fatalf("second migration = %+v, %v", again, err)
	}
}

func TestMigrateRejectsFutureVersion(t *testing.T) {
	root, _ := v1Store(t)
	_ = os.WriteFile(filepath.Join(root, "store", "version"), []byte(`{"format_version": 99}`), 0o644)
	_, err := store.Migrate(context.Background(), root, nil, nil)
	if !errors.Is(err, store.ErrVersionMismatch) || !strings.Contains(err.Error(), "mismatch") {
		t.Fatalf("future version: %v", err)
	}
}

func TestMigrateSkipsCorruptRecordsUntouched(t *testing.T) {
	root, ids := v1Store(t, "good")
	md := filepath.Join(root, "store", "metadata")
	arr := filepath.Join(md, d("array").String())
	garbage := filepath.Join(md, d("garbage").String())
	dot := filepath.Join(md, ".hidden")
	_ = os.WriteFile(arr, []byte(`[1,2]`), 0o644)
	_ = os.WriteFile(garbage, []byte(`{{{`), 0o644)
	_ = os.WriteFile(dot, []byte(`{"x":1}`), 0o644)
	res, err := store.Migrate(context.Background(), root, nil, nil)
	if err != nil || res.EnvironmentsMigrated != 1 {
		t.Fatalf("Migrate = %+v, %v", res, err)
	}
	for p, want := range map[string]string{arr: `[1,2]`, garbage: `{{{`, dot: `{"x":1}`} {
		if b, _ := os.ReadFile(p); string(b) != want {
			t.Errorf("%s rewritten to %q", filepath.Base(p), b)
		}
	}
	s := store.New(root, store.Options{})
	if _, err := s.Envs.Get(context.Background(), ids[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Layout.VerifyVersion(); err != nil {
		t.Fatal(err)
	}
}

func TestMigrateFreshDirectoryInitializes(t *testing.T) {
	root := filepath.Join(t.TempDir(), "new")
	res, err := store.Migrate(context.Background(), root, nil, nil)
	if err != nil || res != nil {
		t.Fatalf("fresh dir: %+v, %v", res, err)
	}
	if err := store.NewLayout(root).VerifyVersion(); err != nil {
		t.Fatal(err)
	}
	// A store with data but no version file is not silently re-initialized.
	root2 := t.TempDir()
	writeFile(t, filepath.Join(root2, "store", "objects", d("x").String()), "x", 0o644)
	if _, err := store.Migrate(context.Background(), root2, nil, nil); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("store without version file: %v", err)
	}
}

// A migration that stops half-way (here: cancelled) leaves the old version file and no
// backup behind; the next run finishes it.
func TestMigrateFailureLeavesNoBackup(t *testing.T) {
	root, _ := v1Store(t, "one", "two")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := store.Migrate(ctx, root, fixedClock, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled migration: %v", err)
	}
	l := store.NewLayout(root)
	if b, _ := os.ReadFile(l.VersionFile()); !strings.Contains(string(b), `"format_version": 1`) {
		t.Fatalf("version file after a failed migration: %q", b)
	}
	if backups, _ := filepath.Glob(l.VersionFile() + ".backup.*"); len(backups) != 0 {
		t.Fatalf("a failed migration left %v", backups)
	}
	res, err := store.Migrate(context.Background(), root, fixedClock, nil)
	if err != nil || res == nil || res.EnvironmentsMigrated != 2 {
		t.Fatalf("migration after the failed one: %+v %v", res, err)
	}
}
