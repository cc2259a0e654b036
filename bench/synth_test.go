package bench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/store"
)

// A synthesized store is a valid store: every record and object verifies through the
// store package, and gc would delete exactly the orphans.
func TestSynthesize(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "store")
	if err := Synthesize(ctx, root, Synth{Envs: 50, Objects: 40, Orphans: 4}); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, root, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	envs, err := st.Envs.List(ctx)
	if err != nil || len(envs) != 50 {
		t.Fatalf("%d environments, %v", len(envs), err)
	}
	objs, err := st.Objects.List(ctx)
	// The 40 of the base layer and the manifest object every record names.
	if err != nil || len(objs) != 41 {
		t.Fatalf("%d objects, %v", len(objs), err)
	}
	for _, d := range objs {
		if _, err := st.Objects.Get(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	u := newUser(t, root)
	u.verifyClean("a synthesized store")
	r := u.ok("--json", "gc", "--dry-run")
	var rep struct {
		OrphanedObjects []string `json:"orphaned_objects"`
	}
	u.jsonOK(&rep, "gc", "--dry-run")
	if len(rep.OrphanedObjects) != 4 {
		t.Errorf("gc would delete %d objects, want the 4 orphans: %s", len(rep.OrphanedObjects), r)
	}
}
