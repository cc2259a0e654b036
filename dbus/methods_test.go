package dbus

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

// The original's D-Bus tests (spec 6.3), ported onto a real bus: every call goes
// through a private dbus-daemon to the service and back.

type status struct {
	EnvID   string `json:"env_id"`
	ShortID string `json:"short_id"`
	Name    string `json:"name"`
	State   string `json:"state"`
}

func (h *harness) list() []status {
	h.t.Helper()
	return decode[[]status](h.t, h.mustCall("ListEnvironments"))
}

func TestListEnvironmentsEmpty(t *testing.T) {
	h := startService(t, "", Options{})
	if got := h.mustCall("ListEnvironments"); got != "[]" {
		t.Fatalf("ListEnvironments on an empty store = %q, want []", got)
	}
}

func TestBuildAndListRoundtrip(t *testing.T) {
	h := startService(t, "", Options{})
	raw := h.mustCall("BuildEnvironment", writeManifest(t, t.TempDir(), "karapace.toml", "rolling"))
	// The original's reply shape, compact, with no name when there is none.
	var fields map[string]any
	if err := json.Unmarshal([]byte(raw), &fields); err != nil {
		t.Fatal(err)
	}
	if len(fields) != 3 || fields["state"] != "built" || strings.Contains(raw, "\n") {
		t.Fatalf("BuildEnvironment reply %s: want compact {env_id, short_id, state: built}", raw)
	}
	b := decode[built](t, raw)
	if _, err := schema.ParseEnvID(b.EnvID); err != nil || b.ShortID != b.EnvID[:12] {
		t.Fatalf("bad ids in %s", raw)
	}
	envs := h.list()
	if len(envs) != 1 || envs[0].EnvID != b.EnvID || envs[0].State != "built" || envs[0].ShortID != b.ShortID {
		t.Fatalf("list after build = %+v, want the one built env", envs)
	}
	if l := h.mustCall("ListEnvironments"); strings.Contains(l, `"name"`) {
		t.Fatalf("unnamed environment listed with a name: %s", l)
	}
}

func TestGetStatusOfBuiltEnv(t *testing.T) {
	h := startService(t, "", Options{})
	b := h.build("rolling")
	for _, ref := range []string{b.EnvID, b.ShortID, b.EnvID[:5]} {
		st := decode[status](t, h.mustCall("GetEnvironmentStatus", ref))
		if st != (status{EnvID: b.EnvID, ShortID: b.ShortID, State: "built"}) {
			t.Fatalf("status(%s) = %+v", ref, st)
		}
	}
}

func TestGetHashReturnsEnvID(t *testing.T) {
	h := startService(t, "", Options{})
	b := h.build("rolling")
	if got := h.mustCall("GetEnvironmentHash", b.ShortID); got != b.EnvID {
		t.Fatalf("GetEnvironmentHash = %q, want the bare id %q", got, b.EnvID)
	}
}

func TestDestroyRemovesEnvironment(t *testing.T) {
	h := startService(t, "", Options{})
	b := h.build("rolling")
	raw := h.mustCall("DestroyEnvironment", b.ShortID)
	if raw != `{"destroyed":"`+b.EnvID+`"}` {
		t.Fatalf("DestroyEnvironment reply %s", raw)
	}
	if envs := h.list(); len(envs) != 0 {
		t.Fatalf("list after destroy = %+v", envs)
	}
	if _, err := os.Stat(filepath.Join(h.store, "env", b.EnvID)); !os.IsNotExist(err) {
		t.Fatalf("environment directory still there: %v", err)
	}
}

func TestDestroyByName(t *testing.T) {
	h := startService(t, "", Options{})
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	b := decode[built](t, h.mustCall("BuildNamedEnvironment", p, "web"))
	d := decode[map[string]string](t, h.mustCall("DestroyEnvironment", "web"))
	if d["destroyed"] != b.EnvID {
		t.Fatalf("destroyed %q, want %q", d["destroyed"], b.EnvID)
	}
	h.callErr(ErrNameNotFound, "GetEnvironmentStatus", "web")
}

func TestGCOnEmptyStore(t *testing.T) {
	h := startService(t, "", Options{})
	r := decode[gcReply](t, h.mustCall("GarbageCollect", false))
	if r.DryRun || r.RemovedEnvs != 0 || r.RemovedLayers != 0 || r.RemovedObjects != 0 {
		t.Fatalf("gc on an empty store = %+v", r)
	}
}

func TestGCAfterBuildAndDestroy(t *testing.T) {
	h := startService(t, "", Options{})
	keep := h.build("keep")
	gone := h.build("gone", "git")
	h.mustCall("DestroyEnvironment", gone.EnvID)
	dry := decode[gcReply](t, h.mustCall("GarbageCollect", true))
	if !dry.DryRun || dry.RemovedEnvs+dry.RemovedLayers+dry.RemovedObjects != 0 {
		t.Fatalf("dry run removed something: %+v", dry)
	}
	r := decode[gcReply](t, h.mustCall("GarbageCollect", false))
	if r.DryRun {
		t.Fatalf("gc reply says dry run: %+v", r)
	}
	if r.RemovedLayers != len(dry.OrphanedLayers) || r.RemovedObjects != len(dry.OrphanedObjects) {
		t.Fatalf("gc removed %+v, dry run announced %+v", r, dry)
	}
	if r.RemovedLayers+r.RemovedObjects == 0 {
		t.Fatalf("gc after destroy removed nothing: %+v", r)
	}
	if st := decode[status](t, h.mustCall("GetEnvironmentStatus", keep.EnvID)); st.State != "built" {
		t.Fatalf("gc touched a live environment: %+v", st)
	}
	v := decode[verifyReply](t, h.mustCall("VerifyStore"))
	if v.Failed != 0 {
		t.Fatalf("store broken after gc: %+v", v)
	}
}

func TestGetStatusNonexistentReturnsError(t *testing.T) {
	h := startService(t, "", Options{})
	msg := h.callErr(ErrNameNotFound, "GetEnvironmentStatus", "abcdef123456")
	if !strings.Contains(msg, "abcdef123456") {
		t.Fatalf("message %q does not name the reference", msg)
	}
	h.callErr(ErrNameNotFound, "GetEnvironmentHash", "nosuchname")
	h.callErr(ErrNameNotFound, "RunEnvironment", "nosuchname")
}

func TestBuildNamedEnvironmentSetsName(t *testing.T) {
	h := startService(t, "", Options{})
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	raw := h.mustCall("BuildNamedEnvironment", p, "my-env")
	b := decode[built](t, raw)
	if b.Name != "my-env" || b.State != "built" {
		t.Fatalf("BuildNamedEnvironment reply %s", raw)
	}
	envs := h.list()
	if len(envs) != 1 || envs[0].Name != "my-env" {
		t.Fatalf("list = %+v", envs)
	}
}

func TestBuildNamedBadNameBuildsNothing(t *testing.T) {
	h := startService(t, "", Options{})
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	h.callErr(ErrNameInvalidArgument, "BuildNamedEnvironment", p, "bad name!")
	h.callErr(ErrNameInvalidArgument, "BuildNamedEnvironment", p, "")
	if envs := h.list(); len(envs) != 0 {
		t.Fatalf("a build with a bad name left %+v", envs)
	}
}

func TestRenameEnvironmentWorks(t *testing.T) {
	h := startService(t, "", Options{})
	b := h.build("rolling")
	raw := h.mustCall("RenameEnvironment", b.ShortID, "renamed")
	if raw != `{"env_id":"`+b.EnvID+`","name":"renamed"}` {
		t.Fatalf("RenameEnvironment reply %s", raw)
	}
	// list_after_rename_shows_new_name and resolve_by_name_works.
	if envs := h.list(); len(envs) != 1 || envs[0].Name != "renamed" {
		t.Fatalf("list after rename = %+v", envs)
	}
	if st := decode[status](t, h.mustCall("GetEnvironmentStatus", "renamed")); st.EnvID != b.EnvID || st.Name != "renamed" {
		t.Fatalf("status by name = %+v", st)
	}
	h.callErr(ErrNameInvalidArgument, "RenameEnvironment", b.EnvID, "no/slashes")
}

func TestRenameToTakenNameReturnsError(t *testing.T) {
	h := startService(t, "", Options{})
	a := h.build("one")
	b := h.build("two")
	h.mustCall("RenameEnvironment", a.EnvID, "taken")
	msg := h.callErr(ErrNameNameTaken, "RenameEnvironment", b.EnvID, "taken")
	if !strings.Contains(msg, "taken") {
		t.Fatalf("message %q", msg)
	}
}

func TestListPresetsReturnsPresets(t *testing.T) {
	h := startService(t, "", Options{})
	got := decode[[]presetReply](t, h.mustCall("ListPresets"))
	want := []presetReply{
		{"dev", "Development environment with common build tools"},
		{"dev-rust", "Rust development environment"},
		{"dev-python", "Python development environment"},
		{"gui-app", "GUI application environment with GPU and audio passthrough"},
		{"gaming", "Gaming environment with GPU, audio, and Vulkan support"},
		{"minimal", "Minimal environment with no extra packages"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ListPresets = %+v", got)
	}
}

func TestBuildInvalidManifestReturnsError(t *testing.T) {
	h := startService(t, "", Options{})
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("manifest_version = 1\n[base\nimage = \"x\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := h.callErr(ErrNameInvalidManifest, "BuildEnvironment", bad); !strings.Contains(msg, "manifest") {
		t.Fatalf("message %q", msg)
	}
	h.callErr(ErrNameInvalidManifest, "BuildEnvironment", filepath.Join(dir, "missing.toml"))
	h.callErr(ErrNameInvalidArgument, "BuildEnvironment", "relative/karapace.toml")
	if envs := h.list(); len(envs) != 0 {
		t.Fatalf("failed builds left %+v", envs)
	}
}

func TestDestroyNonexistentReturnsError(t *testing.T) {
	h := startService(t, "", Options{})
	h.callErr(ErrNameNotFound, "DestroyEnvironment", strings.Repeat("ab", 32))
	h.callErr(ErrNameNotFound, "DestroyEnvironment", "nobody")
}

func TestVerifyStoreAfterBuild(t *testing.T) {
	h := startService(t, "", Options{})
	h.build("rolling", "git")
	raw := h.mustCall("VerifyStore")
	v := decode[verifyReply](t, raw)
	if v.Checked == 0 || v.Failed != 0 || v.Passed != v.Checked || len(v.Failures) != 0 {
		t.Fatalf("VerifyStore = %s", raw)
	}
	// A damaged object is reported, not hidden.
	objs, _ := filepath.Glob(filepath.Join(h.store, "store", "objects", "*"))
	if len(objs) == 0 {
		t.Fatalf("no objects under %s", h.store)
	}
	if err := os.WriteFile(objs[0], []byte("damaged"), 0o644); err != nil {
		t.Fatal(err)
	}
	v = decode[verifyReply](t, h.mustCall("VerifyStore"))
	if v.Failed != 1 || len(v.Failures) != 1 || v.Failures[0].Hash != filepath.Base(objs[0]) {
		t.Fatalf("VerifyStore after damage = %+v", v)
	}
}

func TestAmbiguousAndInvalidReferences(t *testing.T) {
	h := startService(t, "", Options{})
	// Build until two ids share their first hex digit (at most 17 builds).
	first := map[byte]string{}
	var prefix string
	for i := 0; prefix == ""; i++ {
		b := h.build("img" + strings.Repeat("x", i))
		if _, ok := first[b.EnvID[0]]; ok {
			prefix = b.EnvID[:1]
		}
		first[b.EnvID[0]] = b.EnvID
	}
	msg := h.callErr(ErrNameAmbiguous, "GetEnvironmentStatus", prefix)
	if !strings.Contains(msg, "ambiguous") {
		t.Fatalf("message %q", msg)
	}
	h.callErr(ErrNameAmbiguous, "DestroyEnvironment", prefix)
	h.callErr(ErrNameInvalidArgument, "GetEnvironmentStatus", "../../etc")
	h.callErr(ErrNameInvalidArgument, "DestroyEnvironment", "")
}

func TestRunEnvironmentRefusesFrozen(t *testing.T) {
	h := startService(t, "", Options{})
	b := h.build("rolling")
	eng, err := core.New(context.Background(), core.Options{StoreRoot: h.store, Backends: testBackends(mockOpts())})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := schema.ParseEnvID(b.EnvID)
	if err := eng.Freeze(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	msg := h.callErr(ErrNameInvalidState, "RunEnvironment", b.EnvID)
	if !strings.Contains(msg, "frozen") {
		t.Fatalf("message %q", msg)
	}
}
