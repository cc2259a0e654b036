package schema

import (
	"errors"
	"io/fs"
	"math/rand"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleNormalized(t *testing.T) *Normalized { return mustNormalize(t, sampleManifest) }

func sampleResolution() Resolution {
	return Resolution{
		BaseImageDigest: strings.Repeat("a", 64),
		ResolvedPackages: []ResolvedPackage{
			{Name: "clang", Version: "17.0.6-1"},
			{Name: "git", Version: "2.44.0-1"},
		},
	}
}

func u64(v uint64) *uint64 { return &v }

// Ports of lock::lock_roundtrip, lock_integrity_check_passes, lock_integrity_fails_on_tamper,
// lock_contains_real_digest, lock_contains_pinned_versions.
func TestLockBasics(t *testing.T) {
	n := sampleNormalized(t)
	lock := NewLock(n, sampleResolution())

	path := filepath.Join(t.TempDir(), LockFileName)
	if err := lock.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	loaded, err := ReadLock(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(lock, loaded) {
		t.Fatalf("round trip:\n%+v\n%+v", lock, loaded)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("mode = %v, %v", fi.Mode(), err)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temp files left: %v", entries)
	}

	id, err := lock.VerifyIntegrity()
	if err != nil || id != lock.EnvID {
		t.Fatalf("VerifyIntegrity = %s, %v", id, err)
	}

	tampered := *lock
	tampered.EnvID = SumString("tampered")
	_, err = tampered.VerifyIntegrity()
	var mismatch *EnvIDMismatchError
	if !errors.As(err, &mismatch) || !errors.Is(err, ErrLock) || mismatch.LockID != tampered.EnvID.String() || mismatch.ComputedID != lock.EnvID.String() {
		t.Fatalf("tamper: err = %v", err)
	}
	if want := "lock file env_id mismatch: lock has '" + tampered.EnvID.String() + "', recomputed '" + lock.EnvID.String() + "'"; err.Error() != want {
		t.Fatalf("err = %q", err)
	}
	tampered = *lock
	tampered.ShortID = "000000000000"
	if _, err := tampered.VerifyIntegrity(); !errors.As(err, &mismatch) || !mismatch.ShortID {
		t.Fatalf("short id tamper: err = %v", err)
	}
	tampered = *lock
	tampered.ResolvedPackages = []ResolvedPackage{{Name: "clang", Version: "18"}, lock.ResolvedPackages[1]}
	if _, err := tampered.VerifyIntegrity(); !errors.As(err, &mismatch) {
		t.Fatalf("content tamper: err = %v", err)
	}

	if lock.BaseImageDigest != strings.Repeat("a", 64) || lock.BaseImage != "rolling" {
		t.Fatalf("digest/image = %s %s", lock.BaseImageDigest, lock.BaseImage)
	}
	want := []ResolvedPackage{{"clang", "17.0.6-1"}, {"git", "2.44.0-1"}}
	if !reflect.DeepEqual(lock.ResolvedPackages, want) {
		t.Fatalf("packages = %+v", lock.ResolvedPackages)
	}
	if lock.EnvID.String() != "e3890a7eb9d97802a1eea8c9d38b9bb856ee694519e21b84067561cfe8df6d54" || lock.ShortID != "e3890a7eb9d9" {
		t.Fatalf("sample env id = %s %s", lock.EnvID, lock.ShortID)
	}
}

// Ports of same_resolution_same_identity, different_versions_different_identity,
// different_image_digest_different_identity, includes_hardware_policy_in_identity,
// hash_stable_across_repeated_invocations, hash_stable_with_randomized_package_order,
// hash_stable_with_randomized_mount_order, cross_platform_path_normalization,
// identical_inputs_produce_identical_hash_bytes.
func TestLockDeterminism(t *testing.T) {
	n := sampleNormalized(t)
	first := NewLock(n, sampleResolution())
	for i := 0; i < 100; i++ {
		if l := NewLock(n, sampleResolution()); l.EnvID != first.EnvID || l.ShortID != first.ShortID {
			t.Fatalf("run %d: %s != %s", i, l.EnvID, first.EnvID)
		}
	}

	r2 := sampleResolution()
	r2.ResolvedPackages[1].Version = "2.45.0-1"
	if NewLock(n, r2).EnvID == first.EnvID {
		t.Error("different versions, same id")
	}
	r3 := sampleResolution()
	r3.BaseImageDigest = strings.Repeat("b", 64)
	if NewLock(n, r3).EnvID == first.EnvID {
		t.Error("different digest, same id")
	}
	gpu := *n
	gpu.HardwareGPU = true
	if NewLock(&gpu, sampleResolution()).EnvID == first.EnvID {
		t.Error("hardware policy not in identity")
	}

	pkgs := []ResolvedPackage{{"alpha", "1.0"}, {"beta", "2.0"}, {"gamma", "3.0"}, {"beta", "1.0"}}
	ref := NewLock(n, Resolution{BaseImageDigest: "d", ResolvedPackages: pkgs})
	if !reflect.DeepEqual(ref.ResolvedPackages, []ResolvedPackage{{"alpha", "1.0"}, {"beta", "1.0"}, {"beta", "2.0"}, {"gamma", "3.0"}}) {
		t.Fatalf("sorted = %+v", ref.ResolvedPackages)
	}
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 20; i++ {
		shuffled := append([]ResolvedPackage{}, pkgs...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		if l := NewLock(n, Resolution{BaseImageDigest: "d", ResolvedPackages: shuffled}); l.EnvID != ref.EnvID {
			t.Fatalf("package order %v changes the id", shuffled)
		}
	}
	if !reflect.DeepEqual(pkgs[3], ResolvedPackage{"beta", "1.0"}) {
		t.Fatal("NewLock sorted the caller's slice")
	}

	// Mounts come sorted from Normalize; two manifests declaring them in different
	// order give the same id.
	m1 := mustNormalize(t, sampleManifest+"[mounts]\ncache = \"/a:/b\"\nwork = \"/c:/d\"\n")
	m2 := mustNormalize(t, sampleManifest+"[mounts]\nwork = \"/c:/d\"\ncache = \"/a:/b\"\n")
	if NewLock(m1, sampleResolution()).EnvID != NewLock(m2, sampleResolution()).EnvID {
		t.Fatal("mount order changes the id")
	}

	src := *n
	src.Mounts = []Mount{{"src", "/home/user/src", "/workspace"}}
	l := NewLock(&src, sampleResolution())
	if s := l.EnvID.String(); len(s) != 64 || strings.Trim(s, "0123456789abcdef") != "" {
		t.Fatalf("env id %q", s)
	}
	if l2 := NewLock(&src, sampleResolution()); l2.EnvID.String() != l.EnvID.String() || l2.ShortID != l.ShortID {
		t.Fatal("identical inputs, different bytes")
	}
}

// goldenCase is one row of the original's golden identity table (spec 1.6).
type goldenCase struct {
	name     string
	packages []ResolvedPackage
	apps     []string
	mounts   []Mount
	backend  string
	gpu      bool
	audio    bool
	net      bool
	cpu      *uint64
	mem      *uint64
	envID    string
}

var goldenCases = []goldenCase{
	{name: "empty_manifest", backend: "mock", envID: "aabaeaeda3b27db42054f64719a16afd49e72b4fc6e8493e2fce9d862d240806"},
	{name: "with_packages", packages: []ResolvedPackage{{"curl", "7.88.1"}, {"git", "2.39.2"}}, backend: "namespace", envID: "dfea3163e5925ee788a97fae24d9ec08f774c29c64c9180befe771d877e62f18"},
	{name: "with_mounts_and_hardware", packages: []ResolvedPackage{{"vim", "9.0.1"}}, mounts: []Mount{{"home", "/home/user", "/home"}}, backend: "namespace", gpu: true, audio: true, envID: "d6ca89829da264240d0508bd58bffc28c2014f643426bbecff3db5a525793546"},
	{name: "network_isolation", backend: "mock", net: true, envID: "dcdae57b3749d0aa2d3948de9fde99ceedad34deaef9b618c2d9f939dac25596"},
	{name: "with_cpu_shares", backend: "mock", cpu: u64(1024), envID: "d966f9ee1c5e8959ae29d0483c45fc66813ec47201aa9f26c6371336b3dfd252"},
	{name: "with_memory_limit", backend: "mock", mem: u64(4096), envID: "74823889e305b7b28394508b5813568faf9c814b4ef8f1f97e8d3dcd9a7a6bae"},
	{name: "with_apps", apps: []string{"firefox", "code"}, backend: "mock", envID: "1aaf066c7b1e18178e838b0cf33c0bc67cd7401e586df826daa9033178ccfdf3"},
	{name: "with_cpu_and_memory", packages: []ResolvedPackage{{"curl", "7.88.1"}}, apps: []string{"vlc"}, mounts: []Mount{{"data", "/mnt/data", "/data"}}, backend: "namespace", gpu: true, audio: true, net: true, cpu: u64(2048), mem: u64(8192), envID: "44f9547036b4f24f8fe32844f2672804020c6260e29b7f72e17fd29d441ebc27"},
	{name: "gpu_only", backend: "mock", gpu: true, envID: "f761765ba48777bcc64c2cd5169cb44be27bcd2d6587c64c28bc98fa0964b266"},
	{name: "audio_only", backend: "mock", audio: true, envID: "428d91b41a03c1625e01bab1278ef231fb186833bff80a6bdc8227a2276f4318"},
}

func (c goldenCase) lock() *Lock {
	names := make([]string, 0, len(c.packages))
	for _, p := range c.packages {
		names = append(names, p.Name)
	}
	n := &Normalized{
		ManifestVersion: 1, BaseImage: "rolling", SystemPackages: names, GUIApps: c.apps,
		HardwareGPU: c.gpu, HardwareAudio: c.audio, Mounts: c.mounts, RuntimeBackend: c.backend,
		NetworkIsolation: c.net, CPUShares: c.cpu, MemoryLimitMB: c.mem,
	}
	return NewLock(n, Resolution{BaseImageDigest: "sha256:abc123", ResolvedPackages: c.packages})
}

// Ports of the ten golden_identity_* tests: these ids must never change.
func TestGoldenIdentity(t *testing.T) {
	seen := map[EnvID]string{}
	for _, c := range goldenCases {
		l := c.lock()
		if l.EnvID.String() != c.envID || string(l.ShortID) != c.envID[:12] {
			t.Errorf("%s: env_id = %s, want %s", c.name, l.EnvID, c.envID)
		}
		if other, dup := seen[l.EnvID]; dup {
			t.Errorf("%s and %s collide", c.name, other)
		}
		seen[l.EnvID] = c.name
		// Through the file format too: the id survives marshal and parse.
		back, err := ParseLock(l.Marshal())
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if id, err := back.VerifyIntegrity(); err != nil || id.String() != c.envID {
			t.Errorf("%s: after round trip: %s %v", c.name, id, err)
		}
	}
}

// Port of hash_sensitive_to_all_fields, extended to every field of the identity, and a
// check that the fields outside the identity do not change it.
func TestIdentitySensitivity(t *testing.T) {
	base := NewLock(sampleNormalized(t), sampleResolution())
	changes := map[string]func(l *Lock){
		"digest":   func(l *Lock) { l.BaseImageDigest = "x" },
		"packages": func(l *Lock) { l.ResolvedPackages = l.ResolvedPackages[:1] },
		"version":  func(l *Lock) { l.ResolvedPackages = []ResolvedPackage{{"clang", "1"}, {"git", "2.44.0-1"}} },
		"apps":     func(l *Lock) { l.ResolvedApps = []string{"new-app"} },
		"gpu":      func(l *Lock) { l.HardwareGPU = true },
		"audio":    func(l *Lock) { l.HardwareAudio = true },
		"mounts":   func(l *Lock) { l.Mounts = []Mount{{"a", "/b", "/c"}} },
		"backend":  func(l *Lock) { l.RuntimeBackend = "oci" },
		"network":  func(l *Lock) { l.NetworkIsolation = true },
		"cpu":      func(l *Lock) { l.CPUShares = u64(1024) },
		"memory":   func(l *Lock) { l.MemoryLimitMB = u64(4096) },
	}
	for name, change := range changes {
		l := *base
		change(&l)
		if l.Identity() == base.EnvID {
			t.Errorf("%s does not change the identity", name)
		}
	}
	same := *base
	same.BaseImage, same.LockVersion, same.EnvID, same.ShortID = "other", 9, EnvID{}, ""
	if same.Identity() != base.EnvID {
		t.Error("base_image, lock_version, env_id or short_id changed the identity")
	}
}

// The mock backend's resolution (digest = blake3("mock-image:<image>"), versions
// 0.0.0-mock) and the engine ids derived from it (spec 1.6).
func TestMockBackendIdentity(t *testing.T) {
	n := mustNormalize(t, sampleManifest+"[runtime]\nbackend = \"mock\"\n")
	r := MockResolution(n)
	if r.BaseImageDigest != "8f5a576f14f6a9d22f7b7c901865a89ceee954b235faa365a3631098b1a7019e" {
		t.Fatalf("mock digest = %s", r.BaseImageDigest)
	}
	for _, p := range r.ResolvedPackages {
		if p.Version != "0.0.0-mock" {
			t.Fatalf("version %q", p.Version)
		}
	}
	if id := NewLock(n, r).EnvID.String(); id != "5e07b4d895397108c26d04cee57fc26755b8903b2dd5a59eab534ca1a62fcf1b" {
		t.Fatalf("mock env id = %s", id)
	}
	gitOnly := mustNormalize(t, "manifest_version = 1\n[base]\nimage = \"rolling\"\n[system]\npackages = [\"git\"]\n[runtime]\nbackend = \"mock\"\n")
	if id := NewLock(gitOnly, MockResolution(gitOnly)).EnvID.String(); id != "78232f730f707cdbb45a92090780c08e7f8b6c396b936bd4d57e001f0354a1e3" {
		t.Fatalf("mock git-only env id = %s", id)
	}
	if d := UnresolvedResolution(n).BaseImageDigest; d != "7ea7d66d4c903099ed3579b21fdee9b841d8f35d27e3e07fc76af972be617ba4" {
		t.Fatalf("unresolved digest = %s", d)
	}
}

// Ports of manifest_intent_verified and manifest_drift_detected, plus every drift check.
func TestVerifyManifestIntent(t *testing.T) {
	n := mustNormalize(t, sampleManifest+"[gui]\napps = [\"code\"]\n[mounts]\nw = \"/a:/b\"\n[runtime.resource_limits]\ncpu_shares = 10\n")
	lock := NewLock(n, Resolution{BaseImageDigest: "d", ResolvedPackages: []ResolvedPackage{{"clang", "1"}, {"git", "2"}}})
	if err := lock.VerifyManifestIntent(n); err != nil {
		t.Fatalf("unchanged manifest: %v", err)
	}
	// A lock that pins the gui app too (builds since apps are pinned) matches as well.
	pinned := NewLock(n, Resolution{BaseImageDigest: "d", ResolvedPackages: []ResolvedPackage{{"clang", "1"}, {"code", "3"}, {"git", "2"}}})
	if err := pinned.VerifyManifestIntent(n); err != nil {
		t.Fatalf("lock pinning the app: %v", err)
	}
	const rerun = " Run 'karapace build' to re-resolve."
	cases := []struct {
		field  string
		change func(n *Normalized)
		detail string
	}{
		{"base_image", func(n *Normalized) { n.BaseImage = "ubuntu/24.04" }, "base image changed: lock has 'rolling', manifest has 'ubuntu/24.04'"},
		{"runtime_backend", func(n *Normalized) { n.RuntimeBackend = "oci" }, "runtime backend changed: lock has 'namespace', manifest has 'oci'"},
		{"system_packages", func(n *Normalized) { n.SystemPackages = []string{"clang", "git", "vim"} }, "package 'vim' is in manifest but not in lock file." + rerun},
		{"hardware", func(n *Normalized) { n.HardwareAudio = true }, "hardware policy changed." + rerun},
		{"system_packages", func(n *Normalized) { n.SystemPackages = []string{"git"} }, "package 'clang' is in lock file but not in manifest." + rerun},
		{"gui_apps", func(n *Normalized) { n.GUIApps = []string{"code", "vlc"} }, "gui apps changed: lock has 'code', manifest has 'code', 'vlc'." + rerun},
		{"gui_apps", func(n *Normalized) { n.GUIApps = []string{} }, "gui apps changed: lock has 'code', manifest has none." + rerun},
		{"mounts", func(n *Normalized) { n.Mounts = []Mount{{"w", "/a", "/c"}} }, "mount 'w' changed: lock has '/a:/b', manifest has '/a:/c'." + rerun},
		{"mounts", func(n *Normalized) { n.Mounts = append([]Mount{{"v", "/x", "/y"}}, n.Mounts...) }, "mount 'v' is in manifest but not in lock file." + rerun},
		{"mounts", func(n *Normalized) { n.Mounts = nil }, "mount 'w' is in lock file but not in manifest." + rerun},
		{"network_isolation", func(n *Normalized) { n.NetworkIsolation = true }, "network isolation changed: lock has false, manifest has true." + rerun},
		{"cpu_shares", func(n *Normalized) { n.CPUShares = nil }, "cpu_shares changed: lock has 10, manifest has none." + rerun},
		{"cpu_shares", func(n *Normalized) { n.CPUShares = u64(11) }, "cpu_shares changed: lock has 10, manifest has 11." + rerun},
		{"memory_limit_mb", func(n *Normalized) { n.MemoryLimitMB = u64(512) }, "memory_limit_mb changed: lock has none, manifest has 512." + rerun},
	}
	for _, c := range cases {
		d := *n
		c.change(&d)
		err := lock.VerifyManifestIntent(&d)
		var drift *DriftError
		if !errors.As(err, &drift) || !errors.Is(err, ErrLock) {
			t.Errorf("%s: err = %v", c.detail, err)
			continue
		}
		if drift.Field != c.field || drift.Detail != c.detail || err.Error() != "lock file manifest drift: "+c.detail {
			t.Errorf("got %s: %q\nwant %s: %q", drift.Field, err, c.field, c.detail)
		}
	}
	err := LockedIDDrift(SumString("a"), SumString("b"))
	var drift *DriftError
	if !errors.As(err, &drift) || !errors.Is(err, ErrLock) || drift.Field != "env_id" ||
		err.Error() != "lock file manifest drift: locked mode: lock env_id '"+SumString("a").String()+"' does not match resolved env_id '"+SumString("b").String()+"'" {
		t.Fatalf("LockedIDDrift = %v", err)
	}
	// An app pinned in the lock but dropped from the manifest is a package the manifest
	// no longer asks for.
	d0 := *n
	d0.GUIApps = []string{"vlc"}
	if err := pinned.VerifyManifestIntent(&d0); err == nil || err.Error() != "lock file manifest drift: package 'code' is in lock file but not in manifest."+rerun {
		t.Errorf("pinned app dropped: %v", err)
	}
	// The original's order: base image is reported before anything else.
	d := *n
	d.BaseImage, d.RuntimeBackend, d.NetworkIsolation = "x", "oci", true
	if err := lock.VerifyManifestIntent(&d); err == nil || !strings.Contains(err.Error(), "base image changed") {
		t.Fatalf("order: %v", err)
	}
}

func TestLockMarshalLayout(t *testing.T) {
	lock := NewLock(sampleNormalized(t), sampleResolution())
	want := `lock_version = 2
env_id = "e3890a7eb9d97802a1eea8c9d38b9bb856ee694519e21b84067561cfe8df6d54"
short_id = "e3890a7eb9d9"
base_image = "rolling"
base_image_digest = "` + strings.Repeat("a", 64) + `"
resolved_apps = []
runtime_backend = "namespace"
hardware_gpu = false
hardware_audio = false
network_isolation = false
mounts = []

[[resolved_packages]]
name = "clang"
version = "17.0.6-1"

[[resolved_packages]]
name = "git"
version = "2.44.0-1"
`
	if got := string(lock.Marshal()); got != want {
		t.Fatalf("layout:\n%s\nwant:\n%s", got, want)
	}

	full := goldenCases[7].lock()
	full.ResolvedApps = []string{"a", "b\"q\\\t\x01\x7f\u00e9"}
	got := string(full.Marshal())
	for _, frag := range []string{
		"resolved_apps = [\n    \"a\",\n    \"b\\\"q\\\\\\t\\u0001\\u007Fé\",\n]\n",
		"network_isolation = true\ncpu_shares = 2048\nmemory_limit_mb = 8192\n\n[[resolved_packages]]\n",
		"\n[[mounts]]\nlabel = \"data\"\nhost_path = \"/mnt/data\"\ncontainer_path = \"/data\"\n",
	} {
		if !strings.Contains(got, frag) {
			t.Errorf("missing %q in\n%s", frag, got)
		}
	}
	if strings.Contains(got, "resolved_packages = ") || strings.Contains(got, "mounts = ") {
		t.Errorf("non-empty arrays of tables rendered inline:\n%s", got)
	}
	back, err := ParseLock([]byte(got))
	if err != nil || !reflect.DeepEqual(back, full) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, full)
	}
}

func TestParseLockErrors(t *testing.T) {
	good := string(NewLock(sampleNormalized(t), sampleResolution()).Marshal())
	drop := func(key string) string {
		var out []string
		for _, line := range strings.Split(good, "\n") {
			if !strings.HasPrefix(line, key+" = ") {
				out = append(out, line)
			}
		}
		return strings.Join(out, "\n")
	}
	cases := []struct{ name, text, want string }{
		{"version 1", strings.Replace(good, "lock_version = 2", "lock_version = 1", 1), "unsupported lock_version: 1, expected 2"},
		{"version 3", strings.Replace(good, "lock_version = 2", "lock_version = 3", 1), "unsupported lock_version: 3, expected 2"},
		{"version 1 without other fields", "lock_version = 1\nold_field = 1\n", "unsupported lock_version: 1, expected 2"},
		{"version string", strings.Replace(good, "lock_version = 2", "lock_version = \"2\"", 1), "lock_version"},
		{"bad env id", strings.Replace(good, `env_id = "e3890a`, `env_id = "tampered`, 1), "env_id: invalid digest"},
		{"path env id", strings.Replace(good, `env_id = "e3890a7eb9d97802a1eea8c9d38b9bb856ee694519e21b84067561cfe8df6d54"`, `env_id = "../../etc/passwd"`, 1), "env_id: invalid digest"},
		{"bad short id", strings.Replace(good, `short_id = "e3890a7eb9d9"`, `short_id = "E3890A7EB9D9"`, 1), "short_id: invalid digest"},
		{"missing version", drop("lock_version"), "missing field `lock_version`"},
		{"missing env id", drop("env_id"), "missing field `env_id`"},
		{"missing short id", drop("short_id"), "missing field `short_id`"},
		{"missing base image", drop("base_image"), "missing field `base_image`"},
		{"missing digest", drop("base_image_digest"), "missing field `base_image_digest`"},
		{"missing apps", drop("resolved_apps"), "missing field `resolved_apps`"},
		{"missing backend", drop("runtime_backend"), "missing field `runtime_backend`"},
		{"missing gpu", drop("hardware_gpu"), "missing field `hardware_gpu`"},
		{"missing audio", drop("hardware_audio"), "missing field `hardware_audio`"},
		{"missing network", drop("network_isolation"), "missing field `network_isolation`"},
		{"missing packages", strings.SplitN(good, "\n\n[[resolved_packages]]", 2)[0] + "\n", "missing field `resolved_packages`"},
		{"package without version", good + "\n[[resolved_packages]]\nname = \"x\"\n", "resolved_packages[2]: missing field `version`"},
		{"mount without label", drop("mounts") + "\n[[mounts]]\nhost_path = \"/a\"\ncontainer_path = \"/b\"\n", "mounts[0]: missing field `label`"},
		{"negative cpu", strings.Replace(good, "mounts = []", "mounts = []\ncpu_shares = -1", 1), "invalid value for `cpu_shares`: -1 is negative"},
		{"wrong type", strings.Replace(good, "hardware_gpu = false", "hardware_gpu = 0", 1), "line 8 (key `hardware_gpu`): incompatible types"},
		{"malformed", good + "[[", "line"},
		{"nul", good + "\x00", "NUL byte"},
		{"not utf-8", good + "# \xff\n", "invalid UTF-8"},
		{"too large", good + "# " + strings.Repeat("x", MaxLockSize) + "\n", "more than the limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			l, err := ParseLock([]byte(c.text))
			if err == nil {
				t.Fatalf("accepted: %+v", l)
			}
			if !errors.Is(err, ErrLock) || !errors.Is(err, ErrLockSyntax) || !strings.HasPrefix(err.Error(), "lock file parse error: ") {
				t.Fatalf("err = %v", err)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %q, want %q", err, c.want)
			}
		})
	}

	// Unknown keys are ignored, as in the original; mounts and limits are optional.
	l, err := ParseLock([]byte(drop("mounts") + "future_key = \"x\"\n"))
	if err != nil || l.Mounts == nil || len(l.Mounts) != 0 || l.CPUShares != nil {
		t.Fatalf("optional fields: %+v %v", l, err)
	}
}

func TestReadLockErrors(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, LockFileName)
	_, err := ReadLock(missing)
	if !errors.Is(err, ErrLock) || !errors.Is(err, ErrLockIO) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	if want := "lock file I/O error: " + missing + ": no such file or directory"; err.Error() != want {
		t.Fatalf("err = %q", err)
	}
	// Writing into a directory that does not exist fails cleanly.
	lock := NewLock(sampleNormalized(t), sampleResolution())
	if err := lock.WriteFile(filepath.Join(dir, "no", "such", LockFileName)); !errors.Is(err, ErrLockIO) {
		t.Fatalf("WriteFile: err = %v", err)
	}
	// Replacing an existing lock keeps the directory clean.
	path := filepath.Join(dir, LockFileName)
	for i := 0; i < 3; i++ {
		if err := lock.WriteFile(path); err != nil {
			t.Fatal(err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("entries = %v", entries)
	}
}
