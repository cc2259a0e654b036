package store_test

import (
	"context"
	"os"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func TestDanglingOnInMemoryGraphs(t *testing.T) {
	g := store.Graph{
		Envs: []store.GraphEnv{
			// Listed out of id order: Dangling sorts.
			{ID: d("gutted"), RefCount: 1, Manifest: d("gone-manifest"), Base: d("gone-base"),
				Dependencies: []schema.Digest{d("gone-dep"), {}}, Policy: d("gone-policy")},
			{ID: d("whole"), RefCount: 1, Manifest: d("manifest"), Base: d("base")},
			{ID: d("defined"), Manifest: d("manifest")},
		},
		Layers: map[schema.Digest]store.GraphLayer{
			d("base"):     {Kind: store.KindBase, Objects: []schema.Digest{d("tar")}},
			d("snap"):     {Kind: store.KindSnapshot, Parent: d("base"), Objects: []schema.Digest{d("gone-snaptar")}},
			d("lost"):     {Kind: store.KindSnapshot, Parent: d("gone-parent"), Objects: []schema.Digest{d("tar")}},
			d("unread"):   {}, // stored but unreadable: present, refers to nothing
			d("snapsnap"): {Kind: store.KindSnapshot, Parent: d("unread")},
		},
		Objects: []schema.Digest{d("manifest"), d("tar")},
	}
	checked, got := store.Dangling(g)
	if checked != 13 {
		t.Errorf("checked %d references, want 13", checked)
	}
	short := func(s string) string { return d(s).Short() }
	want := map[string]string{
		"gone-manifest": "environment " + short("gutted") + ": manifest object " + d("gone-manifest").String() + " is missing",
		"gone-base":     "environment " + short("gutted") + ": base layer " + d("gone-base").String() + " is missing",
		"gone-dep":      "environment " + short("gutted") + ": dependency layer " + d("gone-dep").String() + " is missing",
		"gone-policy":   "environment " + short("gutted") + ": policy layer " + d("gone-policy").String() + " is missing",
		"gone-snaptar":  "snapshot " + d("snap").String() + " of environment " + short("whole") + ": object " + d("gone-snaptar").String() + " is missing",
		"gone-parent":   "snapshot " + d("lost").String() + ": parent layer " + d("gone-parent").String() + " is missing",
	}
	if len(got) != len(want) {
		t.Fatalf("dangling %v", got)
	}
	for _, r := range got {
		name := ""
		for n := range want {
			if d(n) == r.To {
				name = n
			}
		}
		if r.String() != want[name] {
			t.Errorf("got %q, want %q", r.String(), want[name])
		}
	}
	// Environments first, in id order; the order of Refs within one.
	for i := 1; i < 4; i++ {
		if got[i].Env != d("gutted") || !got[i].Layer.IsZero() {
			t.Fatalf("order: %v", got)
		}
	}
	if got[0].Field != "manifest_hash" || got[3].Field != "policy_layer" || got[4].Layer.IsZero() {
		t.Fatalf("order: %v", got)
	}
	if n, none := store.Dangling(store.Graph{}); n != 0 || len(none) != 0 {
		t.Fatal("empty graph has references")
	}
}

// gutted builds a store holding one environment with a snapshot (its own tar object)
// and returns it with the pieces a test may take away.
func gutted(t *testing.T) (s *store.Store, m store.Metadata, base, snap, snapTar schema.Digest) {
	t.Helper()
	ctx := context.Background()
	s = openStore(t)
	m, base = buildEnv(t, s, "a", 1, store.StateBuilt)
	snapTar, _ = s.Objects.PutBytes(ctx, []byte("snapshot tar"))
	snap, err := s.Layers.Put(ctx, store.Layer{Hash: d("snapid"), Kind: store.KindSnapshot, Parent: base,
		ObjectRefs: []schema.Digest{snapTar}, ReadOnly: true, TarHash: snapTar})
	if err != nil {
		t.Fatal(err)
	}
	return s, m, base, snap, snapTar
}

func TestVerifyNamesWhatAGuttedStoreLacks(t *testing.T) {
	ctx := context.Background()
	s, _, _, _, _ := gutted(t)
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() || rep.RefsChecked != 5 || rep.RefsPassed != 5 {
		t.Fatalf("whole store: %+v %v", rep, err)
	}
	type want struct{ kind, hash, reason string }
	cases := []struct {
		name   string
		damage func(s *store.Store, m store.Metadata, base, snap, snapTar schema.Digest) []want
	}{
		{"base layer", func(s *store.Store, m store.Metadata, base, snap, _ schema.Digest) []want {
			rm(t, s.Layers.Path(base))
			return []want{
				{"reference", base.String(), "environment " + m.EnvID.Short() + ": base layer " + base.String() + " is missing"},
				{"reference", base.String(), "snapshot " + snap.String() + " of environment " + m.EnvID.Short() + ": parent layer " + base.String() + " is missing"},
			}
		}},
		{"snapshot tar", func(s *store.Store, m store.Metadata, _, snap, snapTar schema.Digest) []want {
			rm(t, s.Objects.Path(snapTar))
			return []want{{"reference", snapTar.String(), "snapshot " + snap.String() + " of environment " + m.EnvID.Short() + ": object " + snapTar.String() + " is missing"}}
		}},
		{"manifest object", func(s *store.Store, m store.Metadata, _, _, _ schema.Digest) []want {
			rm(t, s.Objects.Path(m.ManifestHash))
			return []want{{"reference", m.ManifestHash.String(), "environment " + m.EnvID.Short() + ": manifest object " + m.ManifestHash.String() + " is missing"}}
		}},
		{"objects dir", func(s *store.Store, m store.Metadata, base, snap, snapTar schema.Digest) []want {
			l, err := s.Layers.Get(ctx, base) // for the name of its tar object
			if err != nil {
				t.Fatal(err)
			}
			rm(t, s.Layout.ObjectsDir())
			return []want{
				{"directory", "store/objects", "store/objects is missing"},
				{"reference", m.ManifestHash.String(), "environment " + m.EnvID.Short() + ": manifest object " + m.ManifestHash.String() + " is missing"},
				{"reference", l.ObjectRefs[0].String(), "base layer " + base.String() + " of environment " + m.EnvID.Short() + ": object " + l.ObjectRefs[0].String() + " is missing"},
				{"reference", snapTar.String(), "snapshot " + snap.String() + " of environment " + m.EnvID.Short() + ": object " + snapTar.String() + " is missing"},
			}
		}},
		{"layers dir", func(s *store.Store, m store.Metadata, base, _, _ schema.Digest) []want {
			rm(t, s.Layout.LayersDir())
			return []want{
				{"directory", "store/layers", "store/layers is missing"},
				{"reference", base.String(), "environment " + m.EnvID.Short() + ": base layer " + base.String() + " is missing"},
			}
		}},
		{"metadata dir", func(s *store.Store, _ store.Metadata, _, _, _ schema.Digest) []want {
			rm(t, s.Layout.MetadataDir())
			return []want{{"directory", "store/metadata", "store/metadata is missing"}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, m, base, snap, snapTar := gutted(t)
			wants := c.damage(s, m, base, snap, snapTar)
			rep, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Failed) != len(wants) {
				t.Fatalf("failures %+v, want %+v", rep.Failed, wants)
			}
			// Directories first, then the references (layers in hash order).
			found := map[want]bool{}
			refs := 0
			for i, f := range rep.Failed {
				found[want{f.Kind, f.Hash, f.Reason}] = true
				if f.Kind == "directory" && refs > 0 {
					t.Errorf("directory failure after a reference: %+v", rep.Failed)
				}
				if f.Kind == "reference" {
					refs++
					if f.EnvID != m.EnvID.String() || f.Field == "" || f.Missing == "" {
						t.Errorf("failure %d lacks its fields: %+v", i, f)
					}
				}
			}
			for _, w := range wants {
				if !found[w] {
					t.Errorf("no failure %+v among %+v", w, rep.Failed)
				}
			}
			if rep.RefsPassed != rep.RefsChecked-refs {
				t.Errorf("reference counts %d/%d with %d dangling", rep.RefsPassed, rep.RefsChecked, refs)
			}
		})
	}
}

func rm(t *testing.T, p string) {
	t.Helper()
	if err := os.RemoveAll(p); err != nil {
		t.Fatal(err)
	}
}
