package schema

import (
	"errors"
	"strings"
	"testing"
)

func mustNormalize(t *testing.T, text string) *Normalized {
	t.Helper()
	n, err := mustParse(t, text).Normalize()
	if err != nil {
		t.Fatalf("Normalize: %v", err)
	}
	return n
}

// Port of normalize::normalizes_and_sorts_deterministically.
func TestNormalizesAndSortsDeterministically(t *testing.T) {
	n := mustNormalize(t, `
manifest_version = 1

[base]
image = "rolling"

[system]
packages = ["git", "cmake", "git", "clang"]

[gui]
apps = ["debugger", "ide"]

[hardware]
gpu = true
audio = false

[mounts]
workspace = "./:/workspace"
cache = "~/.cache:/cache"
`)
	if got := strings.Join(n.SystemPackages, ","); got != "clang,cmake,git" {
		t.Errorf("packages = %s", got)
	}
	if got := strings.Join(n.GUIApps, ","); got != "debugger,ide" {
		t.Errorf("apps = %s", got)
	}
	want := []Mount{{"cache", "~/.cache", "/cache"}, {"workspace", "./", "/workspace"}}
	if len(n.Mounts) != 2 || n.Mounts[0] != want[0] || n.Mounts[1] != want[1] {
		t.Errorf("mounts = %+v", n.Mounts)
	}
	if n.RuntimeBackend != "namespace" || !n.HardwareGPU || n.HardwareAudio {
		t.Errorf("normalized = %+v", n)
	}
}

// Port of normalize::equivalent_manifests_produce_same_canonical_json.
func TestEquivalentManifestsProduceSameCanonicalJSON(t *testing.T) {
	a := mustNormalize(t, "manifest_version = 1\n[base]\nimage = \"rolling\"\n[system]\npackages = [\"git\", \"clang\"]\n")
	b := mustNormalize(t, "manifest_version = 1\n[base]\nimage = \"rolling\"\n[system]\npackages = [\"clang\", \"git\"]\n")
	if string(a.CanonicalJSON()) != string(b.CanonicalJSON()) {
		t.Fatalf("%s\n%s", a.CanonicalJSON(), b.CanonicalJSON())
	}
}

// Port of normalize::rejects_empty_base_image.
func TestRejectsEmptyBaseImage(t *testing.T) {
	_, err := mustParse(t, "manifest_version = 1\n[base]\nimage = \"   \"\n").Normalize()
	if !errors.Is(err, ErrEmptyBaseImage) || !errors.Is(err, ErrManifest) || err.Error() != "base.image must not be empty" {
		t.Fatalf("err = %v", err)
	}
}

// Port of normalize::rejects_invalid_mount_spec.
func TestRejectsInvalidMountSpec(t *testing.T) {
	_, err := mustParse(t, "manifest_version = 1\n[base]\nimage = \"rolling\"\n[mounts]\nworkspace = \"./no-colon\"\n").Normalize()
	if !errors.Is(err, ErrInvalidMount) || !errors.Is(err, ErrManifest) {
		t.Fatalf("err = %v", err)
	}
	if want := "invalid mount declaration for 'workspace': './no-colon', expected '<host>:<container>'"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

// Port of normalize::runtime_backend_included_in_normalization.
func TestRuntimeBackendIncludedInNormalization(t *testing.T) {
	n := mustNormalize(t, "manifest_version = 1\n[base]\nimage = \"rolling\"\n[runtime]\nbackend = \"OCI\"\n")
	if n.RuntimeBackend != "oci" {
		t.Fatalf("backend = %q", n.RuntimeBackend)
	}
}

func TestNormalizeRules(t *testing.T) {
	const head = "manifest_version = 1\n[base]\nimage = \"rolling\"\n"
	errCases := []struct {
		name, text string
		kind       error
		msg        string
	}{
		{"version 2", "manifest_version = 2\n[base]\nimage = \"x\"\n", ErrUnsupportedVersion, "unsupported manifest_version: 2, expected 1"},
		{"version 0", "manifest_version = 0\n[base]\nimage = \"x\"\n", ErrUnsupportedVersion, "unsupported manifest_version: 0, expected 1"},
		{"version before image", "manifest_version = 3\n[base]\nimage = \"\"\n", ErrUnsupportedVersion, "unsupported manifest_version: 3, expected 1"},
		{"empty image", "manifest_version = 1\n[base]\nimage = \"\"\n", ErrEmptyBaseImage, "base.image must not be empty"},
		{"unicode space image", "manifest_version = 1\n[base]\nimage = \"\u00a0\u2003\"\n", ErrEmptyBaseImage, "base.image must not be empty"},
		{"image before mounts", "manifest_version = 1\n[base]\nimage = \" \"\n[mounts]\nx = \"bad\"\n", ErrEmptyBaseImage, "base.image must not be empty"},
		{"empty label", head + "[mounts]\n\"  \" = \"/a:/b\"\n", ErrEmptyMountLabel, "mount label must not be empty"},
		{"empty host", head + "[mounts]\nw = \" :/b\"\n", ErrInvalidMount, "invalid mount declaration for 'w': ' :/b', expected '<host>:<container>'"},
		{"empty container", head + "[mounts]\nw = \"/a: \"\n", ErrInvalidMount, "invalid mount declaration for 'w': '/a: ', expected '<host>:<container>'"},
		{"raw label in message", head + "[mounts]\n\" w \" = \"x\"\n", ErrInvalidMount, "invalid mount declaration for ' w ': 'x', expected '<host>:<container>'"},
		{"first raw label wins", head + "[mounts]\nb = \"bad\"\na = \"worse\"\n", ErrInvalidMount, "invalid mount declaration for 'a': 'worse', expected '<host>:<container>'"},
		{"duplicate label", head + "[mounts]\na = \"/a:/b\"\n\" a\" = \"/c:/d\"\n", ErrDuplicateMountLabel, "duplicate mount label 'a': declared as ' a' and 'a'"},
	}
	for _, c := range errCases {
		t.Run(c.name, func(t *testing.T) {
			n, err := mustParse(t, c.text).Normalize()
			if err == nil {
				t.Fatalf("accepted: %+v", n)
			}
			if !errors.Is(err, c.kind) || !errors.Is(err, ErrManifest) || err.Error() != c.msg {
				t.Fatalf("err = %q (%v), want %q", err, err, c.msg)
			}
		})
	}

	n := mustNormalize(t, `manifest_version = 1
[base]
image = "  rolling  "
[system]
packages = [" git ", "", "  ", "b", "a", "git", "B"]
[gui]
apps = ["z", " z", "y"]
[mounts]
" w " = " ~/x : /c:with:colons "
a = "/h:/c"
[runtime]
backend = "  NameSpace "
[runtime.resource_limits]
cpu_shares = 0
memory_limit_mb = 9223372036854775807
`)
	if n.BaseImage != "rolling" || strings.Join(n.SystemPackages, ",") != "B,a,b,git" || strings.Join(n.GUIApps, ",") != "y,z" {
		t.Fatalf("normalized = %+v", n)
	}
	if len(n.Mounts) != 2 || n.Mounts[0] != (Mount{"a", "/h", "/c"}) || n.Mounts[1] != (Mount{"w", "~/x", "/c:with:colons"}) {
		t.Fatalf("mounts = %+v", n.Mounts)
	}
	if n.RuntimeBackend != "namespace" || *n.CPUShares != 0 || *n.MemoryLimitMB != 1<<63-1 {
		t.Fatalf("normalized = %+v", n)
	}
	// The normalized limits do not alias the manifest's.
	m := mustParse(t, "manifest_version = 1\n[base]\nimage = \"x\"\n[runtime.resource_limits]\ncpu_shares = 5\n")
	n2, _ := m.Normalize()
	*m.Runtime.ResourceLimits.CPUShares = 6
	if *n2.CPUShares != 5 {
		t.Fatal("normalized cpu_shares aliases the manifest")
	}
}

func TestRequirePinned(t *testing.T) {
	for image, ok := range map[string]bool{
		"https://example.org/rootfs.tar.xz": true, "http://x/y": true,
		"rolling": false, "HTTPS://x": false, "ftp://x": false,
	} {
		err := (&Normalized{BaseImage: image}).RequirePinned()
		if ok != (err == nil) {
			t.Errorf("%s: err = %v", image, err)
		}
		if err != nil && (!errors.Is(err, ErrUnpinnedBaseImage) || !errors.Is(err, ErrManifest) ||
			err.Error() != "base.image is not pinned: '"+image+"' (expected http(s)://...)") {
			t.Errorf("%s: err = %q", image, err)
		}
	}
}

// The sample of the original's tests: rolling + git, clang.
const sampleManifest = "manifest_version = 1\n[base]\nimage = \"rolling\"\n[system]\npackages = [\"git\", \"clang\"]\n"

func TestCanonicalJSONVectors(t *testing.T) {
	n := mustNormalize(t, sampleManifest+"[runtime]\nbackend = \"mock\"\n")
	want := `{"manifest_version":1,"base_image":"rolling","system_packages":["clang","git"],"gui_apps":[],"hardware_gpu":false,"hardware_audio":false,"mounts":[],"runtime_backend":"mock","network_isolation":false,"cpu_shares":null,"memory_limit_mb":null}`
	if got := string(n.CanonicalJSON()); got != want {
		t.Fatalf("canonical JSON\n got %s\nwant %s", got, want)
	}
	if got := SumString(want).String(); got != "677aa297cf994e110656041898fa46115df83c8ca03054dc07b23ca17707f0d2" {
		t.Fatalf("manifest object hash = %s", got)
	}
	// A zero Normalized renders [] too, never null.
	if got := string((&Normalized{}).CanonicalJSON()); !strings.Contains(got, `"system_packages":[],"gui_apps":[]`) || !strings.Contains(got, `"mounts":[]`) {
		t.Fatalf("zero value: %s", got)
	}
	m := Mount{"x", "/a", "/b"}
	withMount := &Normalized{Mounts: []Mount{m}}
	if !strings.Contains(string(withMount.CanonicalJSON()), `"mounts":[{"label":"x","host_path":"/a","container_path":"/b"}]`) {
		t.Fatalf("mount: %s", withMount.CanonicalJSON())
	}
	// serde_json escaping: no HTML escapes, raw U+2028, \u00XX controls.
	odd := &Normalized{BaseImage: "<&>\u2028\x01\"\\/é"}
	if !strings.Contains(string(odd.CanonicalJSON()), `"base_image":"<&>`+"\u2028"+`\u0001\"\\/é"`) {
		t.Fatalf("escaping: %s", odd.CanonicalJSON())
	}
}

func TestDecodeNormalized(t *testing.T) {
	n := mustNormalize(t, sampleManifest+"[mounts]\nw = \"/a:/b\"\n[runtime.resource_limits]\ncpu_shares = 7\n")
	back, err := DecodeNormalized(n.CanonicalJSON())
	if err != nil || string(back.CanonicalJSON()) != string(n.CanonicalJSON()) {
		t.Fatalf("round trip: %v\n%s\n%s", err, back.CanonicalJSON(), n.CanonicalJSON())
	}
	// Missing arrays and unknown keys: decoded as empty, ignored.
	back, err = DecodeNormalized([]byte(`{"manifest_version":1,"base_image":"x","system_packages":null,"future":true}`))
	if err != nil || back.SystemPackages == nil || back.GUIApps == nil || back.Mounts == nil {
		t.Fatalf("decode: %+v %v", back, err)
	}
	if _, err := DecodeNormalized([]byte(`{"manifest_version":"1"}`)); !errors.Is(err, ErrManifest) {
		t.Fatalf("bad JSON: err = %v", err)
	}
}

// Port of identity::stable_id_for_equivalent_manifests and the derived vectors of 1.5.
func TestPreliminaryID(t *testing.T) {
	a := mustNormalize(t, sampleManifest)
	b := mustNormalize(t, "manifest_version = 1\n[base]\nimage = \"rolling\"\n[system]\npackages = [\"clang\", \"git\", \"git\"]\n")
	if a.PreliminaryID() != b.PreliminaryID() {
		t.Fatal("equivalent manifests have different ids")
	}
	if got := a.PreliminaryID().String(); got != "2d8e92453e7429e337a9d49b3c9e79cbb9e003d8a4d3583ce828d579c20bbb41" {
		t.Fatalf("namespace id = %s", got)
	}
	mock := mustNormalize(t, sampleManifest+"[runtime]\nbackend = \"mock\"\n")
	if got := mock.PreliminaryID().String(); got != "85eeb6126bfb149576aae001bfd346452e98a5125598ae0a62795d0c5939df80" {
		t.Fatalf("mock id = %s", got)
	}
	if got := SumString("rolling").String(); got != "4292064f6e4d44bb7aff34c7ceb3600172cf1fa28e64bdb59b3dc79ef2a41e74" {
		t.Fatalf("blake3(rolling) = %s", got)
	}
}

// Port of identity::different_inputs_produce_different_ids, backend_change_changes_id
// and short_id_is_12_chars, extended to every field of the preliminary id.
func TestPreliminaryIDSensitivity(t *testing.T) {
	base := mustNormalize(t, sampleManifest)
	u := func(v uint64) *uint64 { return &v }
	changes := map[string]func(n *Normalized){
		"image":    func(n *Normalized) { n.BaseImage = "ubuntu/24.04" },
		"packages": func(n *Normalized) { n.SystemPackages = []string{"git"} },
		"apps":     func(n *Normalized) { n.GUIApps = []string{"firefox"} },
		"gpu":      func(n *Normalized) { n.HardwareGPU = true },
		"audio":    func(n *Normalized) { n.HardwareAudio = true },
		"mounts":   func(n *Normalized) { n.Mounts = []Mount{{"w", "/a", "/b"}} },
		"backend":  func(n *Normalized) { n.RuntimeBackend = "oci" },
		"network":  func(n *Normalized) { n.NetworkIsolation = true },
		"cpu":      func(n *Normalized) { n.CPUShares = u(1) },
		"memory":   func(n *Normalized) { n.MemoryLimitMB = u(1) },
	}
	seen := map[EnvID]string{base.PreliminaryID(): "base"}
	for name, change := range changes {
		n := *base
		change(&n)
		id := n.PreliminaryID()
		if other, dup := seen[id]; dup {
			t.Errorf("%s gives the same id as %s", name, other)
		}
		seen[id] = name
		ident := NewIdentity(id)
		if len(ident.ShortID) != 12 || !strings.HasPrefix(id.String(), string(ident.ShortID)) {
			t.Errorf("short id %q of %s", ident.ShortID, id)
		}
	}
	b, _ := MarshalCompact(NewIdentity(base.PreliminaryID()))
	if string(b) != `{"env_id":"2d8e92453e7429e337a9d49b3c9e79cbb9e003d8a4d3583ce828d579c20bbb41","short_id":"2d8e92453e74"}` {
		t.Fatalf("identity JSON = %s", b)
	}
}

// The backend is lowercased as Rust's to_lowercase does (full mapping, final sigma).
func TestRustLower(t *testing.T) {
	cases := map[string]string{
		"OCI": "oci", "NameSpace": "namespace", "": "",
		"\u0130X":   "i\u0307x",
		"ΟΔΟΣ":      "οδος", /* final sigma */
		"ΟΔΟΣ ΟΔΟΣ": "οδος οδος",
		"ΣΑ":        "σα",
		"Σ":         "σ",
		"AΣ'":       "aς'",
		"AΣ'B":      "aσ'b",
	}
	for in, want := range cases {
		if got := rustLower(in); got != want {
			t.Errorf("rustLower(%q) = %q, want %q", in, got, want)
		}
	}
}
