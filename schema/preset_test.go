package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// Port of preset::all_presets_parse, get_preset_by_name, all_presets_have_unique_names.
func TestPresets(t *testing.T) {
	ps := Presets()
	names := make([]string, 0, len(ps))
	seen := map[string]bool{}
	for _, p := range ps {
		names = append(names, p.Name)
		if seen[p.Name] {
			t.Errorf("duplicate preset %s", p.Name)
		}
		seen[p.Name] = true
		m, err := ParseManifest([]byte(p.Manifest))
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		n, err := m.Normalize()
		if err != nil || n.BaseImage != "rolling" || n.RuntimeBackend != "namespace" {
			t.Fatalf("%s: %+v %v", p.Name, n, err)
		}
		if p.Description == "" || !strings.HasSuffix(p.Manifest, "\n") {
			t.Errorf("%s: description or final newline missing", p.Name)
		}
	}
	if got := strings.Join(names, ","); got != "dev,dev-rust,dev-python,gui-app,gaming,minimal" {
		t.Fatalf("order = %s", got)
	}
	if p, ok := PresetByName("dev"); !ok || p.Description != "Development environment with common build tools" {
		t.Fatalf("dev = %+v %v", p, ok)
	}
	if _, ok := PresetByName("nonexistent"); ok {
		t.Fatal("nonexistent preset found")
	}
	if _, ok := PresetByName("Dev"); ok {
		t.Fatal("lookup is not exact")
	}

	exact := map[string]string{
		"dev": "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[system]\npackages = [\"git\", \"curl\", \"wget\", \"vim\", \"gcc\", \"make\", \"cmake\"]\n\n[runtime]\nbackend = \"namespace\"\n",
		"gaming": "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[system]\npackages = [\"mesa-dri\", \"vulkan-loader\", \"libvulkan1\", \"alsa-plugins\"]\n\n" +
			"[hardware]\ngpu = true\naudio = true\n\n[runtime]\nbackend = \"namespace\"\n",
		"gui-app": "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[hardware]\ngpu = true\naudio = true\n\n[runtime]\nbackend = \"namespace\"\n",
		"minimal": "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[runtime]\nbackend = \"namespace\"\n",
	}
	for name, text := range exact {
		if p, _ := PresetByName(name); p.Manifest != text {
			t.Errorf("%s:\n%q\nwant\n%q", name, p.Manifest, text)
		}
	}
	descs := map[string]string{
		"dev-rust": "Rust development environment", "dev-python": "Python development environment",
		"gui-app": "GUI application environment with GPU and audio passthrough",
		"gaming":  "Gaming environment with GPU, audio, and Vulkan support", "minimal": "Minimal environment with no extra packages",
	}
	for name, d := range descs {
		if p, _ := PresetByName(name); p.Description != d {
			t.Errorf("%s: description %q", name, p.Description)
		}
	}
	if p, _ := PresetByName("dev-python"); !strings.Contains(p.Manifest, `packages = ["git", "curl", "python3", "python3-pip", "python3-venv"]`) {
		t.Errorf("dev-python: %s", p.Manifest)
	}
	if p, _ := PresetByName("dev-rust"); !strings.Contains(p.Manifest, `packages = ["git", "curl", "gcc", "make", "rustup"]`) {
		t.Errorf("dev-rust: %s", p.Manifest)
	}
}

// The five `new` templates describe the same environments as the original's examples
// (their comments are our own): each is pinned by the preliminary id of its normalized
// content, which is what a template's meaning is.
func TestTemplates(t *testing.T) {
	ids := map[string]string{
		"minimal":    "dd805b2cb27cff39bd17bf240bf97e8b9d510fc06b10958e08a7674debc742b9",
		"dev":        "ba6d062ca521f0c9f7d846510e91f3a8b814440a19956c049a3ce983b759df5e",
		"gui-dev":    "8228b042c0838e6fdf31a04256f7d4e0bd3685a176dc0c8564fc487fc6aa4640",
		"rust-dev":   "65224845604c1cd495beae56bbcccdc86e581f7c055efa4b45db3355c8d67826",
		"ubuntu-dev": "bf7b646568a32f4370041d102f3fb56186715179ad5ac592dd5e03c7393045d7",
	}
	ts := Templates()
	var names []string
	for _, tpl := range ts {
		names = append(names, tpl.Name)
		m, err := ParseManifest([]byte(tpl.Manifest))
		if err != nil {
			t.Fatalf("%s: %v", tpl.Name, err)
		}
		n, err := m.Normalize()
		if err != nil || n.ManifestVersion != 1 || n.BaseImage == "" {
			t.Fatalf("%s: %+v %v", tpl.Name, n, err)
		}
		if got := n.PreliminaryID().String(); got != ids[tpl.Name] {
			t.Errorf("%s: preliminary id %s, want %s", tpl.Name, got, ids[tpl.Name])
		}
	}
	if got := strings.Join(names, ", "); got != "minimal, dev, gui-dev, rust-dev, ubuntu-dev" || got != strings.Join(TemplateNames(), ", ") {
		t.Fatalf("names = %s", got)
	}
	gui, ok := TemplateByName("gui-dev")
	if !ok {
		t.Fatal("gui-dev missing")
	}
	n, _ := mustParse(t, gui.Manifest).Normalize()
	if !n.HardwareGPU || !n.HardwareAudio || len(n.GUIApps) != 1 || n.Mounts[0] != (Mount{"workspace", ".", "/workspace"}) {
		t.Fatalf("gui-dev = %+v", n)
	}
	if u, _ := TemplateByName("ubuntu-dev"); !strings.Contains(u.Manifest, `image = "ubuntu/24.04"`) {
		t.Fatal("ubuntu-dev image")
	}
	if _, ok := TemplateByName("nope"); ok {
		t.Fatal("unknown template found")
	}
}

// Manifest.Marshal writes what `new` writes; the result parses back to the same manifest.
func TestManifestMarshal(t *testing.T) {
	m := mustParse(t, `manifest_version = 1
[base]
image = "rolling"
[system]
packages = ["git", "curl"]
[mounts]
workspace = "~/projects:/workspace"
"odd label" = "/a:/b"
[runtime.resource_limits]
memory_limit_mb = 512
`)
	want := `manifest_version = 1

[base]
image = "rolling"

[system]
packages = [
    "git",
    "curl",
]

[gui]
apps = []

[hardware]
gpu = false
audio = false

[mounts]
"odd label" = "/a:/b"
workspace = "~/projects:/workspace"

[runtime]
backend = "namespace"
network_isolation = false

[runtime.resource_limits]
memory_limit_mb = 512
`
	if got := string(m.Marshal()); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
	back := mustParse(t, string(m.Marshal()))
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("round trip:\n%+v\n%+v", back, m)
	}
	fresh := NewManifest("ubuntu/24.04")
	if back := mustParse(t, string(fresh.Marshal())); !reflect.DeepEqual(back, fresh) {
		t.Fatalf("NewManifest round trip:\n%+v\n%+v", back, fresh)
	}
}

// Ports of types::env_id_display_and_as_ref, env_id_serde_roundtrip, short_id_from_str,
// object_hash_into_inner, layer_hash_equality, env_id_from_string. Our ids validate
// where the original's accepted any string (spec 5.1), so "deadbeef" is now rejected.
func TestIDTypes(t *testing.T) {
	const hex = "44f9547036b4f24f8fe32844f2672804020c6260e29b7f72e17fd29d441ebc27"
	id, err := ParseEnvID(hex)
	if err != nil || id.String() != hex || fmtString(id) != hex {
		t.Fatalf("display: %v %v", id, err)
	}
	b, err := json.Marshal(id)
	if err != nil || string(b) != `"`+hex+`"` {
		t.Fatalf("json = %s %v", b, err)
	}
	var back EnvID
	if err := json.Unmarshal(b, &back); err != nil || back != id {
		t.Fatalf("json round trip: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`"deadbeef"`), &back); err == nil {
		t.Fatal("short hex accepted as an env id")
	}
	s, err := ParseShortID(hex[:12])
	if err != nil || string(s) != hex[:12] || id.Short() != string(s) {
		t.Fatalf("short id %q %v", s, err)
	}
	if a, b := SumString("layer"), SumString("layer"); a != b || a == SumString("other") {
		t.Fatal("digest equality")
	}
	ident := NewIdentity(id)
	if ident.String() != hex || string(ident.ShortID) != hex[:12] {
		t.Fatalf("identity = %+v", ident)
	}
}

func fmtString(s interface{ String() string }) string { return s.String() }
