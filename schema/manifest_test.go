package schema

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, text string) *Manifest {
	t.Helper()
	m, err := ParseManifest([]byte(text))
	if err != nil {
		t.Fatalf("ParseManifest: %v", err)
	}
	return m
}

// Port of manifest::parses_full_manifest.
func TestParsesFullManifest(t *testing.T) {
	m := mustParse(t, `
manifest_version = 1

[base]
image = "rolling"

[system]
packages = ["clang", "cmake", "git"]

[gui]
apps = ["ide", "debugger"]

[hardware]
gpu = true
audio = true

[mounts]
workspace = "./:/workspace"

[runtime]
backend = "oci"
network_isolation = true

[runtime.resource_limits]
cpu_shares = 1024
memory_limit_mb = 4096
`)
	if m.ManifestVersion != 1 || m.Base.Image != "rolling" || len(m.System.Packages) != 3 {
		t.Fatalf("manifest = %+v", m)
	}
	if m.Runtime.Backend != "oci" || !m.Runtime.NetworkIsolation {
		t.Fatalf("runtime = %+v", m.Runtime)
	}
	if c := m.Runtime.ResourceLimits.CPUShares; c == nil || *c != 1024 {
		t.Fatalf("cpu_shares = %v", c)
	}
	if mem := m.Runtime.ResourceLimits.MemoryLimitMB; mem == nil || *mem != 4096 {
		t.Fatalf("memory_limit_mb = %v", mem)
	}
	if !m.Hardware.GPU || !m.Hardware.Audio || len(m.GUI.Apps) != 2 || m.Mounts["workspace"] != "./:/workspace" {
		t.Fatalf("manifest = %+v", m)
	}
}

// Port of manifest::parses_minimal_manifest.
func TestParsesMinimalManifest(t *testing.T) {
	m := mustParse(t, "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n")
	if m.Runtime.Backend != "namespace" || m.Runtime.NetworkIsolation {
		t.Fatalf("runtime = %+v", m.Runtime)
	}
	if m.System.Packages == nil || m.GUI.Apps == nil || m.Mounts == nil {
		t.Fatal("defaults must be empty, not nil")
	}
	// [runtime] present but without backend still defaults to namespace.
	m = mustParse(t, "manifest_version = 1\n[base]\nimage = \"x\"\n[runtime]\nnetwork_isolation = true\n")
	if m.Runtime.Backend != "namespace" {
		t.Fatalf("backend = %q", m.Runtime.Backend)
	}
}

// Port of manifest::rejects_unknown_fields.
func TestRejectsUnknownFields(t *testing.T) {
	_, err := ParseManifest([]byte("\nmanifest_version = 1\n\n[base]\nimage = \"rolling\"\nunknown_field = true\n"))
	if !errors.Is(err, ErrManifest) || !errors.Is(err, ErrManifestSyntax) {
		t.Fatalf("err = %v", err)
	}
	want := "failed to parse manifest: line 6: unknown field `unknown_field` in [base], expected `image`"
	if err.Error() != want {
		t.Fatalf("err = %q\nwant %q", err, want)
	}
}

// Port of manifest::rejects_missing_base.
func TestRejectsMissingBase(t *testing.T) {
	_, err := ParseManifest([]byte("\nmanifest_version = 1\n"))
	if !errors.Is(err, ErrManifest) || err.Error() != "failed to parse manifest: missing field `base`" {
		t.Fatalf("err = %v", err)
	}
}

func TestManifestBadInput(t *testing.T) {
	base := "manifest_version = 1\n[base]\nimage = \"rolling\"\n"
	cases := []struct {
		name, text string
		want       []string // substrings of the message
	}{
		{"missing version", "[base]\nimage = \"x\"\n", []string{"missing field `manifest_version`"}},
		{"missing image", "manifest_version = 1\n[base]\n", []string{"missing field `base.image`"}},
		{"unknown top-level", "extra = 1\n" + base, []string{"line 1: unknown field `extra`, expected one of `manifest_version`, `base`"}},
		{"key after table is in the table", base + "extra = 1\n", []string{"line 4: unknown field `extra` in [base], expected `image`"}},
		{"unknown top-level table", base + "[extra]\nx = 1\n", []string{"line 4: unknown field `extra`"}},
		{"unknown in system", base + "[system]\npkgs = []\n", []string{"line 5: unknown field `pkgs` in [system], expected `packages`"}},
		{"unknown in gui", base + "[gui]\napp = []\n", []string{"unknown field `app` in [gui], expected `apps`"}},
		{"unknown in hardware", base + "[hardware]\nvideo = true\n", []string{"unknown field `video` in [hardware], expected one of `gpu`, `audio`"}},
		{"unknown in runtime", base + "[runtime]\nbackend = \"oci\"\nnet = true\n", []string{"line 6: unknown field `net` in [runtime]"}},
		{"unknown in limits", base + "[runtime.resource_limits]\ncpu = 1\n", []string{"line 5: unknown field `cpu` in [runtime.resource_limits], expected one of `cpu_shares`, `memory_limit_mb`"}},
		{"unknown dotted", "manifest_version = 1\nbase.image = \"x\"\nbase.tag = \"y\"\n", []string{"line 3: unknown field `tag` in [base]"}},
		{"bool as string", base + "[hardware]\ngpu = \"yes\"\n", []string{"line 5", "hardware.gpu", "incompatible types"}},
		{"float version", "manifest_version = 1.0\n[base]\nimage = \"x\"\n", []string{"manifest_version", "incompatible types"}},
		{"version out of range", "manifest_version = 5000000000\n[base]\nimage = \"x\"\n", []string{"manifest_version", "out of range"}},
		{"negative version", "manifest_version = -1\n[base]\nimage = \"x\"\n", []string{"manifest_version", "out of range"}},
		{"negative cpu", base + "[runtime.resource_limits]\ncpu_shares = -5\n", []string{"line 5: invalid value for `runtime.resource_limits.cpu_shares`: -5 is negative"}},
		{"negative memory", base + "[runtime.resource_limits]\nmemory_limit_mb = -1\n", []string{"memory_limit_mb`: -1 is negative"}},
		{"mount not string", base + "[mounts]\nwork = 5\n", []string{"mounts.work", "incompatible types"}},
		{"mount subtable", base + "[mounts.work]\nx = \"a:b\"\n", []string{"incompatible types"}},
		{"packages not strings", base + "[system]\npackages = [\"a\", 1]\n", []string{"system.packages", "incompatible types"}},
		{"base not table", "manifest_version = 1\nbase = \"rolling\"\n", []string{"line 2", "base", "expected table but found string"}},
		{"malformed", "manifest_version = \n", []string{"line 1", "failed to parse manifest: "}},
		{"unterminated string", "manifest_version = 1\n[base]\nimage = \"rolling\n", []string{"line 3"}},
		{"duplicate key", base + "image = \"again\"\n", []string{"line 4"}},
		{"nul byte", "manifest_version = 1\n[base]\nimage = \"ro\x00lling\"\n", []string{"line 3, column 12: NUL byte"}},
		{"non-utf8", "manifest_version = 1\n# caf\xe9\n", []string{"line 2, column 6: invalid UTF-8 byte 0xe9"}},
		{"too large", base + "# " + strings.Repeat("x", MaxManifestSize) + "\n", []string{"more than the limit of 1048576 bytes"}},
		{"empty", "", []string{"missing field `manifest_version`"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := ParseManifest([]byte(c.text))
			if err == nil {
				t.Fatalf("accepted: %+v", m)
			}
			if !errors.Is(err, ErrManifest) || !errors.Is(err, ErrManifestSyntax) {
				t.Fatalf("err %v does not wrap ErrManifest/ErrManifestSyntax", err)
			}
			if !strings.HasPrefix(err.Error(), "failed to parse manifest: ") {
				t.Fatalf("err = %q: want the original's prefix", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err = %q\nwant it to contain %q", err, w)
				}
			}
		})
	}
}

func TestManifestMountsAcceptAnyLabel(t *testing.T) {
	m := mustParse(t, "manifest_version = 1\n[base]\nimage = \"x\"\n[mounts]\n\"my label\" = \"/a:/b\"\nanything_goes = \"/c:/d\"\n")
	if len(m.Mounts) != 2 || m.Mounts["my label"] != "/a:/b" {
		t.Fatalf("mounts = %v", m.Mounts)
	}
}

func TestLoadManifest(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "karapace.toml")
	if err := os.WriteFile(path, []byte("manifest_version = 1\n[base]\nimage = \"rolling\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if m, err := LoadManifest(path); err != nil || m.Base.Image != "rolling" {
		t.Fatalf("LoadManifest = %+v, %v", m, err)
	}

	missing := filepath.Join(dir, "nope.toml")
	_, err := LoadManifest(missing)
	if !errors.Is(err, ErrManifest) || !errors.Is(err, ErrManifestIO) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
	if want := "failed to read manifest file: " + missing + ": no such file or directory"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}

	big := filepath.Join(dir, "big.toml")
	if err := os.WriteFile(big, make([]byte, MaxManifestSize+10), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadManifest(big); !errors.Is(err, ErrManifestIO) || !strings.Contains(err.Error(), "more than 1048576 bytes") {
		t.Fatalf("big: err = %v", err)
	}

	if _, err := LoadManifest(dir); !errors.Is(err, ErrManifestIO) {
		t.Fatalf("directory: err = %v", err)
	}
}

// Deep nesting and long dotted keys are refused before the TOML decoder, whose time
// grows steeply with them (4000 nested inline tables took 5 s; a 20000-part key, 40 s).
func TestManifestPathologicalInput(t *testing.T) {
	cases := map[string]string{
		"nested arrays":        "x = " + strings.Repeat("[", 100000),
		"nested inline tables": "x = " + strings.Repeat("{a=", 100000),
		"nested headers":       strings.Repeat("[", 1000),
		"long dotted key":      "x." + strings.Repeat("a.", 20000) + "b = 1\n",
		"long dotted header":   "[" + strings.Repeat("a.", 20000) + "b]\n",
		"long quoted key":      strings.Repeat(`"a".`, 100) + "b = 1\n",
	}
	for name, text := range cases {
		start := time.Now()
		_, err := ParseManifest([]byte(text))
		if !errors.Is(err, ErrManifestSyntax) || !strings.Contains(err.Error(), "line 1: ") {
			t.Errorf("%s: err = %v", name, err)
		}
		if _, err := ParseLock([]byte(text)); !errors.Is(err, ErrLockSyntax) {
			t.Errorf("%s: lock err = %v", name, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("%s took %v", name, d)
		}
	}

	// Brackets, dots and quotes inside strings and comments do not count, and real
	// manifests with floats and dates in odd places are not affected.
	ok := "manifest_version = 1 # [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[ a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q\n" +
		"[base]\nimage = \"" + strings.Repeat("[{.", 40) + "\\\"" + strings.Repeat("]", 40) + "\"\n" +
		"[system]\npackages = [\"\"\"\n" + strings.Repeat("[", 40) + "\n\"\"\"\"\", '''" + strings.Repeat("{a.", 40) + "''', '" + strings.Repeat("[.", 40) + "']\n" +
		"[mounts]\n\"" + strings.Repeat("a.", 40) + "\" = \"/a:/b\"\n"
	m, err := ParseManifest([]byte(ok))
	if err != nil {
		t.Fatalf("valid manifest refused: %v", err)
	}
	if len(m.System.Packages) != 3 || !strings.HasSuffix(m.System.Packages[0], "[\n\"\"") {
		t.Fatalf("packages = %q", m.System.Packages)
	}
	if err := checkNesting([]byte("x = [1.5, 2.5, 3.5, 1979-05-27T07:32:00.999, " + strings.Repeat("1.0, ", 100) + "]\n" + strings.Repeat("[", 32))); err != nil {
		t.Fatalf("floats and dates: %v", err)
	}
}
