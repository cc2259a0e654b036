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

func TestLayoutPaths(t *testing.T) {
	l := store.NewLayout("/k")
	id := schema.SumString("env")
	for got, want := range map[string]string{
		l.ObjectsDir():      "/k/store/objects",
		l.LayersDir():       "/k/store/layers",
		l.MetadataDir():     "/k/store/metadata",
		l.StagingDir():      "/k/store/staging",
		l.WALDir():          "/k/store/wal",
		l.VersionFile():     "/k/store/version",
		l.LockFile():        "/k/store/.lock",
		l.EnvDir():          "/k/env",
		l.EnvPath(id):       "/k/env/" + id.String(),
		l.OverlayDir(id):    "/k/env/" + id.String() + "/overlay",
		l.UpperDir(id):      "/k/env/" + id.String() + "/upper",
		l.LowerDir(id):      "/k/env/" + id.String() + "/lower",
		l.RunningMarker(id): "/k/env/" + id.String() + "/.running",
	} {
		if got != want {
			t.Errorf("path %q, want %q", got, want)
		}
	}
}

func TestInitializeCreatesDirectoriesAndVersion(t *testing.T) {
	l := store.NewLayout(t.TempDir())
	if err := l.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{l.ObjectsDir(), l.LayersDir(), l.MetadataDir(), l.StagingDir(), l.EnvDir()} {
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			t.Errorf("%s not created: %v", d, err)
		}
	}
	b, err := os.ReadFile(l.VersionFile())
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != "{\n  \"format_version\": 2\n}" {
		t.Fatalf("version file %q", b)
	}
	fi, _ := os.Stat(l.VersionFile())
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("version file mode %v", fi.Mode().Perm())
	}
}

func TestInitializeIsIdempotent(t *testing.T) {
	l := store.NewLayout(t.TempDir())
	for range 3 {
		if err := l.Initialize(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestVersionMismatch(t *testing.T) {
	l := newLayout(t)
	if err := os.WriteFile(l.VersionFile(), []byte(`{"format_version": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	err := l.Initialize(context.Background())
	var vm *store.VersionMismatchError
	if !errors.As(err, &vm) || !errors.Is(err, store.ErrVersionMismatch) || !errors.Is(err, store.ErrStore) {
		t.Fatalf("Initialize on v1 = %v", err)
	}
	if vm.Expected != 2 || vm.Found != 1 || err.Error() != "store format version mismatch: expected 2, found 1" {
		t.Fatalf("mismatch %+v %q", vm, err)
	}
}

func TestVersionFileCorruptOrMissing(t *testing.T) {
	l := newLayout(t)
	_ = os.WriteFile(l.VersionFile(), []byte(`not json`), 0o644)
	if err := l.VerifyVersion(); !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("corrupt version = %v", err)
	}
	_ = os.Remove(l.VersionFile())
	if err := l.VerifyVersion(); !errors.Is(err, os.ErrNotExist) || !errors.Is(err, store.ErrStore) {
		t.Fatalf("missing version = %v", err)
	}
}

func TestParseIDRejectsPathTricks(t *testing.T) {
	for _, s := range []string{"", "../version", "abc123def456", strings.Repeat("A", 64), strings.Repeat("a", 63) + "/", strings.Repeat("a", 65)} {
		if _, err := store.ParseID(s); !errors.Is(err, store.ErrInvalidID) {
			t.Errorf("ParseID(%q) = %v, want ErrInvalidID", s, err)
		}
	}
	if _, err := store.ParseID(strings.Repeat("0a", 32)); err != nil {
		t.Fatal(err)
	}
}

func TestFormatTimeMatchesChrono(t *testing.T) {
	base := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	for ns, want := range map[int]string{
		0:         "2025-01-01T12:00:00+00:00",
		123000000: "2025-01-01T12:00:00.123+00:00",
		123456000: "2025-01-01T12:00:00.123456+00:00",
		123456789: "2025-01-01T12:00:00.123456789+00:00",
		1000:      "2025-01-01T12:00:00.000001+00:00",
		1:         "2025-01-01T12:00:00.000000001+00:00",
	} {
		if got := store.FormatTime(base.Add(time.Duration(ns))); got != want {
			t.Errorf("FormatTime(+%dns) = %s, want %s", ns, got, want)
		}
	}
	paris := time.FixedZone("x", 3600)
	if got := store.FormatTime(time.Date(2025, 1, 1, 13, 0, 0, 0, paris)); got != "2025-01-01T12:00:00+00:00" {
		t.Errorf("non-UTC input gave %s", got)
	}
}

func TestErrorClasses(t *testing.T) {
	for _, err := range []error{store.ErrNotFound, store.ErrIntegrity, store.ErrVersionMismatch, store.ErrInvalidID,
		store.ErrInvalidName, store.ErrNameConflict, store.ErrLocked, store.ErrCorrupt, store.ErrUnsafeArchive, store.ErrUnsafePath,
		&store.IntegrityError{}, &store.VersionMismatchError{}, &store.NameConflictError{}, &store.LockedError{}} {
		if !errors.Is(err, store.ErrStore) {
			t.Errorf("%T %v is not in the ErrStore class", err, err)
		}
	}
	nc := &store.NameConflictError{Name: "dev", ExistingEnvID: "abc123def456"}
	if !strings.Contains(nc.Error(), "dev") || !strings.Contains(nc.Error(), "abc123def456") {
		t.Errorf("name conflict message %q", nc)
	}
}

func TestErrorMessages(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	missing := schema.SumString("missing")
	_, errObj := s.Objects.Get(ctx, missing)
	_, errLayer := s.Layers.Get(ctx, missing)
	_, errEnv := s.Envs.Get(ctx, missing)
	errName := store.ValidateName("bad name")
	for err, want := range map[error]string{
		errObj:   "object not found: " + missing.String(),
		errLayer: "layer not found: " + missing.String(),
		errEnv:   "environment not found: " + missing.String(),
		errName:  "environment name must match [a-zA-Z0-9_-]",
		&store.LockedError{Path: "/x/.lock", Holder: "pid 7"}: "held by pid 7",
	} {
		if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, store.ErrStore) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
	for _, err := range []error{errObj, errLayer, errEnv} {
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%v is not ErrNotFound", err)
		}
	}
	ie := &store.IntegrityError{What: "object", Name: "n", Expected: "e1", Actual: "a1"}
	if ie.Error() != "integrity check failed for object 'n': expected e1, got a1" {
		t.Errorf("integrity message %q", ie)
	}
}

func TestOpKindDisplay(t *testing.T) {
	for k, want := range map[store.OpKind]string{store.OpBuild: "build", store.OpRebuild: "rebuild", store.OpCommit: "commit",
		store.OpRestore: "restore", store.OpDestroy: "destroy", store.OpGC: "gc", store.OpEnter: "enter", store.OpExec: "exec"} {
		if k.String() != want {
			t.Errorf("%s displays as %s", string(k), k)
		}
	}
	if store.StateBuilt.String() != "built" || store.StateArchived.String() != "archived" {
		t.Error("state display")
	}
}
