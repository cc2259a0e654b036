package store

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
)

// TestSettledDropsWhatVerifyRacedWith: Verify takes no lock, so a dangling reference
// is reported only if, read again, its holder still holds it and its target is still
// missing.
func TestSettledDropsWhatVerifyRacedWith(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	missing, err := Layer{Hash: schema.SumString("tar"), Kind: KindBase}.Digest()
	if err != nil {
		t.Fatal(err)
	}
	id := schema.SumString("env")
	m := Metadata{EnvID: id, ShortID: id.Short(), State: StateBuilt, BaseLayer: missing,
		CreatedAt: "2025-01-01T00:00:00+00:00", UpdatedAt: "2025-01-01T00:00:00+00:00", RefCount: 1}
	if err := s.Envs.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	ref := DanglingRef{Env: id, Ref: Ref{Field: "base_layer", To: missing}}
	if s.settled(ctx, ref) {
		t.Fatal("a reference the record still holds, to a missing layer, counts as settled")
	}
	if !s.settled(ctx, DanglingRef{Env: id, Ref: Ref{Field: "policy_layer", To: missing}}) {
		t.Error("a reference the record no longer holds is not settled")
	}
	if _, err := s.Layers.Put(ctx, Layer{Hash: schema.SumString("tar"), Kind: KindBase}); err != nil {
		t.Fatal(err)
	}
	if !s.settled(ctx, ref) {
		t.Error("a target stored after the listing is not settled")
	}
	if err := os.Remove(s.Layers.Path(missing)); err != nil {
		t.Fatal(err)
	}
	if err := s.Envs.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if !s.settled(ctx, ref) {
		t.Error("a reference of a removed record is not settled")
	}
	holder, err := s.Layers.Put(ctx, Layer{Hash: schema.SumString("snap"), Kind: KindSnapshot, Parent: missing})
	if err != nil {
		t.Fatal(err)
	}
	lref := DanglingRef{Layer: holder, Kind: KindSnapshot, Ref: Ref{Field: "parent", To: missing}}
	if s.settled(ctx, lref) {
		t.Fatal("a stored layer's reference to a missing parent counts as settled")
	}
	if err := s.Layers.Remove(ctx, holder); err != nil {
		t.Fatal(err)
	}
	if !s.settled(ctx, lref) {
		t.Error("a reference of a removed layer is not settled")
	}
}
