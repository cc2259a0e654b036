package dbus

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/store"
)

// TestBinaryRefusesNewerStore: the store-format gate is core.New's, so the service
// gets it as the CLI does. On a store whose version says 99 the activated
// karapace-dbus refuses to start, GarbageCollect fails, and the environment it would
// have collected (ref_count 0) is still there.
func TestBinaryRefusesNewerStore(t *testing.T) {
	a := startActivatable(t, "KARAPACE_DBUS_IDLE_TIMEOUT=30")
	ctx := context.Background()
	e, err := core.New(ctx, core.Options{StoreRoot: a.store, Backends: testBackends(mockOpts())})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Build(ctx, writeManifest(t, t.TempDir(), "karapace.toml", "rolling"), core.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l := store.NewLayout(a.store)
	if err := os.WriteFile(l.VersionFile(), []byte(`{"format_version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	call := a.c.Object(BusName, ObjectPath).Call(Interface+".GarbageCollect", 0, false)
	if call.Err == nil {
		t.Fatalf("GarbageCollect on a version-99 store succeeded: %v", call.Body)
	}
	if _, err := os.Stat(l.EnvPath(res.EnvID)); err != nil {
		t.Errorf("the environment directory went: %v", err)
	}
	if _, err := os.Stat(filepath.Join(l.MetadataDir(), res.EnvID.String())); err != nil {
		t.Errorf("the environment's record went: %v", err)
	}
	if !strings.Contains(a.log.String(), "store format version mismatch: expected 2, found 99") {
		t.Errorf("the service did not say why:\n%s", a.log.String())
	}
}
