package store_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func fixedClock() time.Time { return time.Date(2025, 1, 1, 12, 0, 0, 123456789, time.UTC) }

func newEnvs(t *testing.T) (*store.Envs, store.Layout) {
	l := newLayout(t)
	return store.NewEnvs(l, fixedClock, nil), l
}

func sampleMeta(seed string) store.Metadata {
	id := schema.SumString(seed)
	return store.Metadata{
		EnvID: id, ShortID: id.Short(), State: store.StateDefined,
		ManifestHash: schema.SumString("manifest " + seed), BaseLayer: schema.SumString("base " + seed),
		DependencyLayers: []schema.Digest{schema.SumString("dep")},
		CreatedAt:        "2025-01-01T00:00:00+00:00", UpdatedAt: "2025-01-01T00:00:00+00:00", RefCount: 1,
	}
}

func TestMetadataGoldenAndChecksum(t *testing.T) {
	m := sampleMeta("golden")
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "metadata.json", b)
	m.Name = "dev"
	m.PolicyLayer = schema.SumString("policy")
	m.BaseLayer = schema.Digest{}
	m.DependencyLayers = nil
	b, err = m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "metadata-named.json", b)
	got, err := store.DecodeMetadata(b)
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := m.ComputeChecksum()
	if got.Checksum != sum || got.Name != "dev" || got.PolicyLayer != m.PolicyLayer || !got.BaseLayer.IsZero() {
		t.Fatalf("decoded %+v", got)
	}
}

func TestMetadataRoundTripAndChecksumEmbedded(t *testing.T) {
	ctx := context.Background()
	envs, _ := newEnvs(t)
	m := sampleMeta("a")
	if err := envs.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := envs.Get(ctx, m.EnvID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Checksum.IsZero() || got.EnvID != m.EnvID || got.ManifestHash != m.ManifestHash || len(got.DependencyLayers) != 1 {
		t.Fatalf("round trip %+v", got)
	}
	raw, _ := os.ReadFile(envs.Path(m.EnvID))
	if !strings.HasSuffix(string(raw), ",\n  \"checksum\": \""+got.Checksum.String()+"\"\n}") {
		t.Fatalf("checksum is not the last key:\n%s", raw)
	}
}

func TestMetadataTamperingIsIntegrityErrorNotNotFound(t *testing.T) {
	ctx := context.Background()
	envs, _ := newEnvs(t)
	m := sampleMeta("a")
	_ = envs.Put(ctx, m)
	raw, _ := os.ReadFile(envs.Path(m.EnvID))
	tampered := strings.Replace(string(raw), `"ref_count": 1`, `"ref_count": 7`, 1)
	_ = os.WriteFile(envs.Path(m.EnvID), []byte(tampered), 0o644)
	_, err := envs.Get(ctx, m.EnvID)
	if !errors.Is(err, store.ErrIntegrity) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("tampered metadata: %v", err)
	}
}

func TestMetadataLegacyWithoutChecksumAccepted(t *testing.T) {
	ctx := context.Background()
	envs, _ := newEnvs(t)
	id := schema.SumString("legacy")
	doc := `{"env_id":"` + id.String() + `","short_id":"` + id.Short() + `","state":"Built","manifest_hash":"","base_layer":"","dependency_layers":[],"created_at":"x","updated_at":"y","ref_count":1,"checksum":null}`
	_ = os.WriteFile(envs.Path(id), []byte(doc), 0o644)
	m, err := envs.Get(ctx, id)
	if err != nil || m.Name != "" || m.State != store.StateBuilt || !m.Checksum.IsZero() {
		t.Fatalf("legacy: %+v %v", m, err)
	}
	// Missing required field is corrupt.
	_ = os.WriteFile(envs.Path(id), []byte(strings.Replace(doc, `"ref_count":1,`, ``, 1)), 0o644)
	if _, err := envs.Get(ctx, id); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("missing ref_count: %v", err)
	}
}

func TestMetadataStateRefCountAndTimestamps(t *testing.T) {
	ctx := context.Background()
	envs, _ := newEnvs(t)
	m := sampleMeta("a")
	_ = envs.Put(ctx, m)
	if err := envs.UpdateState(ctx, m.EnvID, store.StateBuilt); err != nil {
		t.Fatal(err)
	}
	got, _ := envs.Get(ctx, m.EnvID)
	if got.State != store.StateBuilt || got.UpdatedAt != "2025-01-01T12:00:00.123456789+00:00" {
		t.Fatalf("after UpdateState: %+v", got)
	}
	for _, step := range []struct {
		inc  bool
		want uint32
	}{{true, 2}, {false, 1}, {false, 0}, {false, 0}} {
		var n uint32
		var err error
		if step.inc {
			n, err = envs.IncrementRef(ctx, m.EnvID)
		} else {
			n, err = envs.DecrementRef(ctx, m.EnvID)
		}
		if err != nil || n != step.want {
			t.Fatalf("ref count %d, %v; want %d", n, err, step.want)
		}
	}
	if err := envs.UpdateState(ctx, schema.SumString("nope"), store.StateBuilt); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UpdateState(missing) = %v", err)
	}
}

func TestMetadataNames(t *testing.T) {
	ctx := context.Background()
	envs, _ := newEnvs(t)
	a, b := sampleMeta("a"), sampleMeta("b")
	_ = envs.Put(ctx, a)
	_ = envs.Put(ctx, b)
	if err := envs.SetName(ctx, a.EnvID, "my-env_123"); err != nil {
		t.Fatal(err)
	}
	if got, err := envs.GetByName(ctx, "my-env_123"); err != nil || got.EnvID != a.EnvID {
		t.Fatalf("GetByName = %v, %v", got.EnvID, err)
	}
	if _, err := envs.GetByName(ctx, "other"); !errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), "name 'other'") {
		t.Fatalf("GetByName(unknown) = %v", err)
	}
	err := envs.SetName(ctx, b.EnvID, "my-env_123")
	var nc *store.NameConflictError
	if !errors.As(err, &nc) || nc.ExistingEnvID != a.EnvID.Short() {
		t.Fatalf("duplicate name: %v", err)
	}
	if err := envs.SetName(ctx, a.EnvID, "my-env_123"); err != nil {
		t.Fatalf("same env re-using its name: %v", err)
	}
	b.Name = "my-env_123"
	if err := envs.Put(ctx, b); !errors.As(err, &nc) {
		t.Fatalf("Put with a taken name: %v", err)
	}
	b.Name = ""
	for _, bad := range []string{"", " ", "has space", "a/b", "a.b", strings.Repeat("x", 65)} {
		if bad == "" {
			continue // "" clears
		}
		if err := envs.SetName(ctx, a.EnvID, bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("SetName(%q) = %v", bad, err)
		}
	}
	for _, good := range []string{"a", strings.Repeat("x", 64), "my-env_123"} {
		if err := store.ValidateName(good); err != nil {
			t.Errorf("ValidateName(%q) = %v", good, err)
		}
	}
	if err := store.ValidateName(""); !errors.Is(err, store.ErrInvalidName) {
		t.Error("empty name accepted")
	}
	if err := envs.SetName(ctx, a.EnvID, ""); err != nil {
		t.Fatal(err)
	}
	if got, _ := envs.Get(ctx, a.EnvID); got.Name != "" {
		t.Fatal("name not cleared")
	}
	raw, _ := os.ReadFile(envs.Path(a.EnvID))
	if !strings.Contains(string(raw), `"name": null`) {
		t.Fatalf("cleared name is not null:\n%s", raw)
	}
}

func TestMetadataListAndListWithErrors(t *testing.T) {
	ctx := context.Background()
	envs, l := newEnvs(t)
	if all, err := envs.List(ctx); err != nil || len(all) != 0 {
		t.Fatalf("List(empty) = %v, %v", all, err)
	}
	var ids []schema.Digest
	for _, s := range []string{"x", "y", "z"} {
		m := sampleMeta(s)
		ids = append(ids, m.EnvID)
		_ = envs.Put(ctx, m)
	}
	corrupt := schema.SumString("corrupt")
	_ = os.WriteFile(envs.Path(corrupt), []byte("{not json"), 0o644)
	_ = os.WriteFile(l.MetadataDir()+"/abc123def456", []byte("{}"), 0o644)
	_ = os.WriteFile(l.MetadataDir()+"/.tmpXYZ123", []byte("{}"), 0o644)
	all, err := envs.List(ctx)
	if err != nil || len(all) != 3 {
		t.Fatalf("List = %d entries, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].EnvID.String() >= all[i].EnvID.String() {
			t.Fatal("List not sorted by env id")
		}
	}
	entries, err := envs.ListWithErrors(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := 0
	for _, e := range entries {
		if e.Err != nil {
			bad++
			if !errors.Is(e.Err, store.ErrCorrupt) {
				t.Errorf("%s: %v", e.Name, e.Err)
			}
		}
	}
	if len(entries) != 5 || bad != 2 {
		t.Fatalf("ListWithErrors: %d entries, %d bad", len(entries), bad)
	}
	if ok, _ := envs.Exists(ctx, ids[0]); !ok {
		t.Fatal("Exists = false")
	}
	if err := envs.Remove(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	if ok, _ := envs.Exists(ctx, ids[0]); ok {
		t.Fatal("Exists after Remove")
	}
	if _, err := envs.Get(ctx, ids[0]); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(removed) = %v", err)
	}
}

func TestMetadataFileMustMatchItsName(t *testing.T) {
	ctx := context.Background()
	envs, _ := newEnvs(t)
	a := sampleMeta("a")
	_ = envs.Put(ctx, a)
	other := schema.SumString("other")
	raw, _ := os.ReadFile(envs.Path(a.EnvID))
	_ = os.WriteFile(envs.Path(other), raw, 0o644)
	if _, err := envs.Get(ctx, other); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("misplaced record: %v", err)
	}
}
