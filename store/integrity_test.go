package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestVerifyCleanAndEmptyStore(t *testing.T) {
	s := openStore(t)
	rep, err := s.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Checked != 0 {
		t.Fatalf("empty store: %+v %v", rep, err)
	}
	buildEnv(t, s, "a", 1, "Built")
	rep, err = s.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Checked != 2 || rep.Passed != 2 || rep.LayersChecked != 1 || rep.LayersPassed != 1 || rep.MetadataChecked != 1 || rep.MetadataPassed != 1 {
		t.Fatalf("clean store: %+v %v", rep, err)
	}
}

func TestVerifyReportsEveryBadEntryByName(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	m, base := buildEnv(t, s, "a", 1, "Built")
	buildEnv(t, s, "b", 1, "Built")
	_ = os.WriteFile(s.Objects.Path(m.ManifestHash), []byte("tampered"), 0o644)
	_ = os.WriteFile(s.Layers.Path(base), []byte("tampered"), 0o644)
	raw, _ := os.ReadFile(s.Envs.Path(m.EnvID))
	_ = os.WriteFile(s.Envs.Path(m.EnvID), []byte(strings.Replace(string(raw), `"ref_count": 1`, `"ref_count": 9`, 1)), 0o644)
	_ = os.WriteFile(filepath.Join(s.Layout.ObjectsDir(), "not-a-hash"), []byte("x"), 0o644)
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range rep.Failed {
		got[f.Kind+" "+f.Hash] = f.Reason
	}
	want := map[string]string{
		"object " + m.ManifestHash.String(): "object hash mismatch: got ",
		"object not-a-hash":                 "object read error",
		"layer " + base.String():            "layer hash mismatch: got ",
		"metadata " + m.EnvID.String():      "metadata checksum mismatch: got ",
	}
	if len(got) != len(want) {
		t.Fatalf("failures %v", rep.Failed)
	}
	for k, prefix := range want {
		if !strings.HasPrefix(got[k], prefix) {
			t.Errorf("%s: reason %q, want prefix %q", k, got[k], prefix)
		}
	}
	if rep.Failed[0].Kind != "object" || rep.Failed[len(rep.Failed)-1].Kind != "metadata" {
		t.Fatalf("order: %v", rep.Failed)
	}
	if rep.MetadataChecked != 2 || rep.MetadataPassed != 1 {
		t.Fatalf("metadata counts %d/%d", rep.MetadataPassed, rep.MetadataChecked)
	}
}
