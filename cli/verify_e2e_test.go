package cli

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIVerifyGuttedStore: verify-store and doctor of the built binary check the
// reference graph, not only the hashes of the files present. A store with a base
// layer, a snapshot's tar object, a manifest object or the whole objects/ directory
// taken away (each from a fresh copy of one healthy store) fails with exit 3 and names
// the missing item, what refers to it and the environment, in the text and the --json
// report, and doctor's store_integrity fails naming it too; the healthy store passes.
func TestCLIVerifyGuttedStore(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	id := w.buildNamed("karapace.toml", "demo")
	if err := os.WriteFile(filepath.Join(w.store, "env", id, "upper", "work"), []byte("changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.ok("commit", "demo")
	var snaps snapshotsResult
	w.jsonOK(&snaps, "snapshots", "demo")
	if len(snaps.Snapshots) != 1 {
		t.Fatalf("snapshots: %+v", snaps)
	}
	snap := snaps.Snapshots[0]
	var meta struct {
		ManifestHash string `json:"manifest_hash"`
		BaseLayer    string `json:"base_layer"`
	}
	raw, err := os.ReadFile(filepath.Join(w.store, "store", "metadata", id))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	short := id[:12]

	var v verifyResult
	w.jsonOK(&v, "verify-store")
	if v.Failed != 0 || v.ReferencesChecked != 5 || v.ReferencesPassed != 5 {
		t.Fatalf("verify-store of the healthy store: %+v", v)
	}
	if r := w.ok("verify-store"); !strings.Contains(r.stdout, "store references: 5/5 resolved\n") {
		t.Errorf("verify-store text of the healthy store: %s", r)
	}
	if c := doctorIntegrity(t, w); c.Status != "pass" {
		t.Errorf("doctor of the healthy store: %+v", c)
	}

	type failure struct{ kind, hash, text string }
	cases := []struct {
		name   string
		remove string // below the store root
		want   []failure
	}{
		{"base layer", "store/layers/" + meta.BaseLayer, []failure{
			{"reference", meta.BaseLayer, "environment " + short + ": base layer " + meta.BaseLayer + " is missing"},
			{"reference", meta.BaseLayer, "snapshot " + snap.Key.String() + " of environment " + short + ": parent layer " + meta.BaseLayer + " is missing"},
		}},
		{"snapshot tar object", "store/objects/" + snap.TarHash.String(), []failure{
			{"reference", snap.TarHash.String(), "snapshot " + snap.Key.String() + " of environment " + short + ": object " + snap.TarHash.String() + " is missing"},
		}},
		{"manifest object", "store/objects/" + meta.ManifestHash, []failure{
			{"reference", meta.ManifestHash, "environment " + short + ": manifest object " + meta.ManifestHash + " is missing"},
		}},
		{"objects directory", "store/objects", []failure{
			{"directory", "store/objects", "store/objects is missing"},
			{"reference", meta.ManifestHash, "environment " + short + ": manifest object " + meta.ManifestHash + " is missing"},
			{"reference", snap.TarHash.String(), "snapshot " + snap.Key.String() + " of environment " + short + ": object " + snap.TarHash.String() + " is missing"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := w.storeCopy(t)
			if err := os.RemoveAll(filepath.Join(g.store, c.remove)); err != nil {
				t.Fatal(err)
			}
			r := g.run("verify-store")
			if r.code != 3 {
				t.Errorf("verify-store exit %d, want 3: %s", r.code, r)
			}
			for _, f := range c.want {
				if !strings.Contains(r.stdout, "  FAIL "+f.text+"\n") {
					t.Errorf("verify-store text lacks %q: %s", f.text, r)
				}
			}
			r = g.run("--json", "verify-store")
			var v verifyResult
			decodeOne(t, r.stdout, &v)
			if r.code != 3 || v.Failed != len(v.Failures) || v.Failed < len(c.want) {
				t.Errorf("verify-store --json: %s", r)
			}
			for _, f := range c.want {
				found := false
				for _, got := range v.Failures {
					if got.Kind == f.kind && got.Hash == f.hash && got.Reason == f.text {
						found = true
						if f.kind == "reference" && (got.EnvID != id || got.Field == "" || got.Missing == "") {
							t.Errorf("failure without its fields: %+v", got)
						}
					}
				}
				if !found {
					t.Errorf("verify-store --json lacks %+v: %s", f, r)
				}
			}
			if v.ReferencesPassed >= v.ReferencesChecked {
				t.Errorf("references %d/%d passed", v.ReferencesPassed, v.ReferencesChecked)
			}
			if d := doctorIntegrity(t, g); d.Status != "fail" || !strings.Contains(d.Message, c.want[0].text) {
				t.Errorf("doctor's store_integrity: %+v", d)
			}
		})
	}
	// What a gutted store cannot do, it reports as a store error too.
	g := w.storeCopy(t)
	if err := os.RemoveAll(filepath.Join(g.store, "store", "objects", snap.TarHash.String())); err != nil {
		t.Fatal(err)
	}
	if r := g.run("restore", "demo", snap.Key.String()); r.code != 3 {
		t.Errorf("restore from a snapshot without its tar: %s", r)
	}
}

// storeCopy is a world on a fresh copy of w's store (same project and home).
func (w *world) storeCopy(t *testing.T) *world {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "store")
	if out, err := exec.Command("cp", "-a", w.store, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the store: %v\n%s", err, out)
	}
	c := *w
	c.t, c.store = t, dst
	c.env = append([]string(nil), w.env...)
	for i, kv := range c.env {
		if strings.HasPrefix(kv, "KARAPACE_STORE=") {
			c.env[i] = "KARAPACE_STORE=" + dst
		}
	}
	return &c
}

// doctorIntegrity runs doctor and returns its store_integrity check.
func doctorIntegrity(t *testing.T, w *world) doctorCheck {
	t.Helper()
	var d doctorResult
	r := w.run("--json", "doctor")
	decodeOne(t, r.stdout, &d)
	for _, c := range d.Checks {
		if c.Name == "store_integrity" {
			return c
		}
	}
	t.Fatalf("doctor has no store_integrity check: %s", r)
	return doctorCheck{}
}
