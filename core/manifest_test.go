package core

import (
	"context"
	"errors"
	"testing"

	"github.com/karapace/karapace/schema"
)

// TestManifestOfEnvironment: Manifest returns what the environment was built from, and
// ErrNotFound for an unknown id.
func TestManifestOfEnvironment(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	r, err := e.Build(ctx, appsManifest(t, t.TempDir(), `"git", "clang"`), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.Manifest(ctx, r.EnvID)
	if err != nil {
		t.Fatal(err)
	}
	if n.BaseImage != "rolling" || n.RuntimeBackend != "mock" || len(n.SystemPackages) != 2 || n.SystemPackages[0] != "clang" {
		t.Errorf("manifest %+v", n)
	}
	if _, err := e.Manifest(ctx, schema.SumString("nothing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}
