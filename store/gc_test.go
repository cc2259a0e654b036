package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func d(s string) schema.Digest { return schema.SumString(s) }

func TestMarkOnInMemoryGraphs(t *testing.T) {
	g := store.Graph{
		Envs: []store.GraphEnv{
			{ID: d("live"), State: store.StateBuilt, RefCount: 1, Base: d("base1"), Dependencies: []schema.Digest{{}}, Manifest: d("manifest1")},
			{ID: d("orphan"), State: store.StateBuilt, RefCount: 0, Base: d("base2"), Manifest: d("manifest2")},
			{ID: d("archived"), State: store.StateArchived, RefCount: 0, Base: d("base3")},
			{ID: d("running"), State: store.StateRunning, RefCount: 0, Manifest: d("manifest4")},
			{ID: d("defined"), State: store.StateDefined, RefCount: 1, Manifest: d("manifest5")},
		},
		Layers: map[schema.Digest]store.GraphLayer{
			d("base1"):     {Kind: store.KindBase, Objects: []schema.Digest{d("tar1")}},
			d("base2"):     {Kind: store.KindBase, Objects: []schema.Digest{d("tar2")}},
			d("base3"):     {Kind: store.KindBase, Objects: []schema.Digest{d("tar3")}},
			d("snap1"):     {Kind: store.KindSnapshot, Parent: d("base1"), Objects: []schema.Digest{d("snaptar1")}},
			d("snap2"):     {Kind: store.KindSnapshot, Parent: d("base2"), Objects: []schema.Digest{d("snaptar2")}},
			d("snapsnap"):  {Kind: store.KindSnapshot, Parent: d("snap1"), Objects: []schema.Digest{d("snaptar3")}},
			d("basechild"): {Kind: store.KindBase, Parent: d("base1"), Objects: []schema.Digest{d("x")}},
		},
		Objects: []schema.Digest{d("tar1"), d("tar2"), d("tar3"), d("snaptar1"), d("snaptar2"), d("snaptar3"), d("x"),
			d("manifest1"), d("manifest2"), d("manifest4"), d("manifest5"), d("stray")},
	}
	m := store.Mark(g)
	set := func(ds []schema.Digest) map[schema.Digest]bool {
		out := map[schema.Digest]bool{}
		for _, x := range ds {
			out[x] = true
		}
		return out
	}
	if len(m.OrphanEnvs) != 1 || m.OrphanEnvs[0] != d("orphan") {
		t.Fatalf("orphan envs %v", m.OrphanEnvs)
	}
	layers := set(m.OrphanLayers)
	if len(layers) != 3 || !layers[d("base2")] || !layers[d("snap2")] || !layers[d("basechild")] {
		t.Fatalf("orphan layers %v", m.OrphanLayers)
	}
	objs := set(m.OrphanObjects)
	want := []string{"tar2", "snaptar2", "x", "manifest2", "stray"}
	if len(objs) != len(want) {
		t.Fatalf("orphan objects: %d, want %d", len(objs), len(want))
	}
	for _, w := range want {
		if !objs[d(w)] {
			t.Errorf("object %s should be orphaned", w)
		}
	}
	for i := 1; i < len(m.OrphanObjects); i++ {
		if m.OrphanObjects[i-1].String() > m.OrphanObjects[i].String() {
			t.Fatal("orphan objects not sorted")
		}
	}
	if empty := store.Mark(store.Graph{}); len(empty.OrphanEnvs)+len(empty.OrphanLayers)+len(empty.OrphanObjects) != 0 {
		t.Fatal("empty graph has orphans")
	}
}

// buildEnv stores a manifest object, a tar object, a base layer and metadata, as the
// engine does for a built environment.
func buildEnv(t *testing.T, s *store.Store, seed string, refs uint32, st store.State) (store.Metadata, schema.Digest) {
	t.Helper()
	ctx := context.Background()
	man, err := s.Objects.PutBytes(ctx, []byte(`{"manifest":"`+seed+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	tar, _ := s.Objects.PutBytes(ctx, []byte("tar "+seed))
	base, err := s.Layers.Put(ctx, store.Layer{Hash: tar, Kind: store.KindBase, ObjectRefs: []schema.Digest{tar}, ReadOnly: true, TarHash: tar})
	if err != nil {
		t.Fatal(err)
	}
	m := sampleMeta(seed)
	m.ManifestHash, m.BaseLayer, m.DependencyLayers, m.RefCount, m.State = man, base, nil, refs, st
	if err := s.Envs.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(s.Layout.UpperDir(m.EnvID), "f"), seed, 0o644)
	return m, base
}

func openStore(t *testing.T) *store.Store {
	s, err := store.Open(context.Background(), t.TempDir(), store.Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGCRemovesOrphansAndDryRunMatches(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	live, liveBase := buildEnv(t, s, "live", 1, store.StateBuilt)
	dead, _ := buildEnv(t, s, "dead", 0, store.StateBuilt)
	buildEnv(t, s, "archived", 0, store.StateArchived)
	buildEnv(t, s, "running", 0, store.StateRunning)
	snapTar, _ := s.Objects.PutBytes(ctx, []byte("snapshot tar"))
	snap, _ := s.Layers.Put(ctx, store.Layer{Hash: d("snapid"), Kind: store.KindSnapshot, Parent: liveBase, ObjectRefs: []schema.Digest{snapTar}, ReadOnly: true, TarHash: snapTar})

	dry, err := s.GC(ctx, store.GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if dry.RemovedEnvs+dry.RemovedLayers+dry.RemovedObjects != 0 {
		t.Fatal("dry run removed something")
	}
	if len(dry.OrphanedEnvs) != 1 || dry.OrphanedEnvs[0] != dead.EnvID.String() || len(dry.OrphanedLayers) != 1 || len(dry.OrphanedObjects) != 2 {
		t.Fatalf("dry run report %+v", dry)
	}
	if ok, _ := s.Envs.Exists(ctx, dead.EnvID); !ok {
		t.Fatal("dry run deleted metadata")
	}
	rep, err := s.GC(ctx, store.GCOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.RemovedEnvs != len(dry.OrphanedEnvs) || rep.RemovedLayers != len(dry.OrphanedLayers) || rep.RemovedObjects != len(dry.OrphanedObjects) {
		t.Fatalf("real run %+v differs from dry run %+v", rep, dry)
	}
	if _, err := os.Stat(s.Layout.EnvPath(dead.EnvID)); err == nil {
		t.Fatal("orphan env dir survived")
	}
	for _, obj := range []schema.Digest{live.ManifestHash, snapTar} {
		if ok, _ := s.Objects.Exists(ctx, obj); !ok {
			t.Errorf("live object %s removed", obj.Short())
		}
	}
	if ok, _ := s.Layers.Exists(ctx, snap); !ok {
		t.Fatal("snapshot of a live base removed")
	}
	if v, err := s.Verify(ctx); err != nil || !v.OK() {
		t.Fatalf("verify after GC: %+v %v", v, err)
	}
	again, _ := s.GC(ctx, store.GCOptions{})
	if again.RemovedEnvs+again.RemovedLayers+again.RemovedObjects != 0 {
		t.Fatalf("second GC removed more: %+v", again)
	}
}

func TestGCStopsOnUnreadableMetadataOrLayer(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	m, base := buildEnv(t, s, "live", 1, store.StateBuilt)
	raw, _ := os.ReadFile(s.Envs.Path(m.EnvID))
	_ = os.WriteFile(s.Envs.Path(m.EnvID), []byte(strings.Replace(string(raw), "Built", "Frozen", 1)), 0o644)
	if _, err := s.GC(ctx, store.GCOptions{}); !errors.Is(err, store.ErrIntegrity) {
		t.Fatalf("GC with corrupt metadata = %v", err)
	}
	if ok, _ := s.Layers.Exists(ctx, base); !ok {
		t.Fatal("GC deleted the layer of corrupt metadata")
	}
	_ = os.WriteFile(s.Envs.Path(m.EnvID), raw, 0o644)
	_ = os.WriteFile(s.Layers.Path(base), []byte("garbage"), 0o644)
	if _, err := s.GC(ctx, store.GCOptions{}); !errors.Is(err, store.ErrIntegrity) {
		t.Fatalf("GC with corrupt layer = %v", err)
	}
	if ok, _ := s.Objects.Exists(ctx, m.ManifestHash); !ok {
		t.Fatal("GC deleted objects despite the unreadable layer")
	}
}

func TestGCCleansCrashLeftovers(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	m, _ := buildEnv(t, s, "live", 1, store.StateBuilt)
	old := time.Now().Add(-time.Hour)
	mk := func(p string, dir bool) string {
		if dir {
			writeFile(t, filepath.Join(p, "x"), "x", 0o644)
		} else {
			writeFile(t, p, "x", 0o644)
		}
		_ = os.Chtimes(p, old, old)
		return p
	}
	tmpObj := mk(filepath.Join(s.Layout.ObjectsDir(), ".tmpAAAAAA"), false)
	tmpMeta := mk(filepath.Join(s.Layout.MetadataDir(), ".tmpBBBBBB"), false)
	freshTmp := filepath.Join(s.Layout.LayersDir(), ".tmpCCCCCC")
	writeFile(t, freshTmp, "in flight", 0o644)
	staleStage := mk(filepath.Join(s.Layout.StagingDir(), "restore-old"), true)
	walStage := mk(filepath.Join(s.Layout.StagingDir(), "restore-inflight"), true)
	swapOld := mk(s.Layout.UpperDir(m.EnvID)+".swap-old", true)
	op, _ := s.WAL.Begin(ctx, store.OpRestore, m.EnvID.String())
	_ = s.WAL.AddStep(ctx, op, store.RemoveDirStep(walStage))

	corruptWAL := filepath.Join(s.Layout.WALDir(), "corrupt.json")
	writeFile(t, corruptWAL, "{", 0o644)
	dry, err := s.GC(ctx, store.GCOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(corruptWAL); err != nil {
		t.Fatal("a dry run deleted a WAL entry")
	}
	if len(dry.Leftovers) != 4 {
		t.Fatalf("leftovers %v", dry.Leftovers)
	}
	rep, err := s.GC(ctx, store.GCOptions{})
	if err != nil || rep.RemovedLeftovers != 4 {
		t.Fatalf("GC = %+v, %v", rep, err)
	}
	for _, p := range []string{tmpObj, tmpMeta, staleStage, swapOld} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("leftover %s survived", p)
		}
	}
	for _, p := range []string{freshTmp, walStage, s.Layout.UpperDir(m.EnvID)} {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

func TestGCCancellation(t *testing.T) {
	s := openStore(t)
	for i := range 5 {
		_, _ = s.Objects.PutBytes(context.Background(), []byte{byte(i)})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rep, err := s.GC(ctx, store.GCOptions{})
	if !errors.Is(err, context.Canceled) || rep.RemovedObjects != 0 {
		t.Fatalf("cancelled GC = %+v, %v", rep, err)
	}
	if ds, _ := s.Objects.List(context.Background()); len(ds) != 5 {
		t.Fatalf("cancelled GC removed objects: %d left", len(ds))
	}
}
