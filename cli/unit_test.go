package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// runIn runs the CLI in-process with buffers and a fake environment.
func runIn(t *testing.T, env map[string]string, tty bool, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	g := &globals{
		stdin:  strings.NewReader(stdin),
		stdout: &out,
		stderr: &errb,
		getenv: func(k string) string { return env[k] },
		isTTY:  func(any) bool { return tty },
	}
	code = run(context.Background(), g, args)
	return out.String(), errb.String(), code
}

func TestExitCodes(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	manifestErr := func() error {
		_, err := schema.ParseManifest([]byte("manifest_version = 1\n[base]\nimage = 3\n"))
		return err
	}()
	if manifestErr == nil {
		t.Fatal("a malformed manifest parsed")
	}
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"nil", ctx, nil, 0},
		{"plain", ctx, errors.New("boom"), 1},
		{"usage", ctx, usageError{errors.New("bad flag")}, 2},
		{"manifest", ctx, fmt.Errorf("build: %w", manifestErr), 2},
		{"core manifest", ctx, fmt.Errorf("%w: x", core.ErrManifest), 2},
		{"store", ctx, fmt.Errorf("open: %w", store.ErrVersionMismatch), 3},
		{"store version", ctx, &store.VersionMismatchError{Expected: 2, Found: 9}, 3},
		{"lock timeout", ctx, fmt.Errorf("build: %w", core.ErrLockTimeout), 3},
		{"remote wrapping store", ctx, fmt.Errorf("%w: %w", core.ErrRemote, store.ErrNotFound), 1},
		{"lock file", ctx, fmt.Errorf("%w: drift", core.ErrLockFile), 1},
		{"status", ctx, exitStatus{7}, 7},
		{"broken pipe", ctx, fmt.Errorf("write: %w", syscall.EPIPE), 0},
		{"cancelled", cancelled, context.Canceled, 130},
		{"cancelled other error", cancelled, errors.New("interrupted midway"), 130},
		{"not found", ctx, fmt.Errorf("%w: x", core.ErrNotFound), 1},
	}
	for _, tt := range tests {
		if got := exitCode(tt.ctx, tt.err); got != tt.want {
			t.Errorf("%s: exitCode = %d, want %d", tt.name, got, tt.want)
		}
	}
	// The original's exit_codes_are_distinct.
	seen := map[int]bool{}
	for _, c := range []int{exitOK, exitFailure, exitManifest, exitStore, exitCancelled} {
		if seen[c] {
			t.Errorf("exit code %d used twice", c)
		}
		seen[c] = true
	}
}

func TestColorizeState(t *testing.T) {
	for _, s := range []string{"built", "running", "defined", "frozen", "archived"} {
		got := colorizeState(s, true)
		if !strings.Contains(got, s) || !strings.Contains(got, "\x1b[") {
			t.Errorf("colorizeState(%q) = %q", s, got)
		}
		if colorizeState(s, false) != s {
			t.Errorf("colorizeState(%q, false) changed the text", s)
		}
	}
	if got := colorizeState("unknown", true); got != "unknown" {
		t.Errorf("unknown state changed: %q", got)
	}
}

func TestWriteJSON(t *testing.T) {
	var b bytes.Buffer
	if err := writeJSON(&b, map[string]any{"a": "<b>", "list": []string{"x", "y"}}); err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"a\": \"<b>\",\n  \"list\": [\n    \"x\",\n    \"y\"\n  ]\n}\n"
	if b.String() != want {
		t.Errorf("writeJSON = %q, want %q", b.String(), want)
	}
}

func TestParseLogLevel(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"debug", "DEBUG", true},
		{"karapace_core=debug", "DEBUG", true},
		{"warn,karapace_core=info", "INFO", true},
		{"trace", "DEBUG-4", true},
		{"", "", false},
		{"nonsense", "", false},
	}
	for _, tt := range tests {
		lvl, ok := parseLogLevel(tt.in)
		if ok != tt.ok || (ok && lvl.String() != tt.want) {
			t.Errorf("parseLogLevel(%q) = %v, %v; want %s, %v", tt.in, lvl, ok, tt.want, tt.ok)
		}
	}
}

func TestSpinnerPlain(t *testing.T) {
	var b bytes.Buffer
	s := newSpinner(&b, false, "building environment...")
	s.Progress("resolving")
	s.Success("environment built")
	s.Fail("ignored after the end")
	want := "building environment...\n  resolving\n✓ environment built\n"
	if b.String() != want {
		t.Errorf("plain spinner wrote %q, want %q", b.String(), want)
	}
}

func TestSpinnerTTY(t *testing.T) {
	var b syncBuffer
	s := newSpinner(&b, true, "building environment...")
	s.Progress("resolving")
	s.Fail("build failed")
	got := b.String()
	for _, want := range []string{"⠋", "building environment... (resolving)", "\r\x1b[2K✗ build failed\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal spinner output %q lacks %q", got, want)
		}
	}
}

func TestPadRight(t *testing.T) {
	if got := padRight("→ab", 5); got != "→ab  " {
		t.Errorf("padRight = %q", got)
	}
	if got := padRight("abcdef", 3); got != "abcdef" {
		t.Errorf("padRight = %q", got)
	}
}

func TestStorePath(t *testing.T) {
	tests := []struct {
		flag string
		env  map[string]string
		want string
	}{
		{"", map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/karapace"},
		{"", map[string]string{"HOME": "/home/u", "KARAPACE_STORE": "/srv/k"}, "/srv/k"},
		{"/x", map[string]string{"HOME": "/home/u", "KARAPACE_STORE": "/srv/k"}, "/x"},
		{"~/k", map[string]string{"HOME": "/home/u"}, "/home/u/k"},
		{"~/k", map[string]string{}, ""},
		{"", map[string]string{}, ""},
	}
	for _, tt := range tests {
		g := &globals{storeFlag: tt.flag, getenv: func(k string) string { return tt.env[k] }}
		got, err := g.storePath()
		if (err != nil) != (tt.want == "") || got != tt.want {
			t.Errorf("storePath(%q, %v) = %q, want %q", tt.flag, tt.env, got, tt.want)
		}
	}
}

func TestResolveErrorMessages(t *testing.T) {
	a := envRef{EnvID: strings.Repeat("a", 64), ShortID: "aaaaaaaaaaaa", Name: "demo", State: "built"}
	b := envRef{EnvID: strings.Repeat("b", 64), ShortID: "bbbbbbbbbbbb", State: "frozen"}
	amb := &resolveError{class: errAmbiguous, input: "a", count: 2, candidates: []envRef{a, b}}
	want := "ambiguous env_id prefix 'a': matches 2 environments\n\nMatches:\n  demo (aaaaaaaaaaaa) built\n  bbbbbbbbbbbb (bbbbbbbbbbbb) frozen\n\nUse a longer prefix, a full env_id, or a unique name."
	if amb.Error() != want {
		t.Errorf("ambiguous message:\n%s\nwant:\n%s", amb.Error(), want)
	}
	if !errors.Is(amb, errAmbiguous) {
		t.Error("ambiguous error does not match errAmbiguous")
	}
	if got := suggestions([]envRef{a, b}, "DEM"); len(got) != 1 || got[0].Name != "demo" {
		t.Errorf("suggestions = %v", got)
	}
	none := &resolveError{class: errNoEnv, input: "dem", candidates: suggestions([]envRef{a, b}, "dem")}
	want = "no environment matching 'dem'\n\nDid you mean:\n  demo (aaaaaaaaaaaa) built\n\nUse 'karapace list' to see all environments."
	if none.Error() != want {
		t.Errorf("not-found message:\n%s\nwant:\n%s", none.Error(), want)
	}
	if got := (&resolveError{class: errNoEnv, input: "zz"}).Error(); got != "no environment matching 'zz'" {
		t.Errorf("bare not-found message: %q", got)
	}
}

// The original's templates_parse: every template is a valid v1 manifest.
func TestTemplatesParse(t *testing.T) {
	names := schema.TemplateNames()
	if len(names) != 5 {
		t.Fatalf("templates: %v", names)
	}
	for _, n := range names {
		tpl, ok := schema.TemplateByName(n)
		if !ok {
			t.Fatalf("template %s missing", n)
		}
		m, err := schema.ParseManifest([]byte(tpl.Manifest))
		if err != nil {
			t.Fatalf("template %s: %v", n, err)
		}
		if m.ManifestVersion != 1 || strings.TrimSpace(m.Base.Image) == "" {
			t.Errorf("template %s: version %d, image %q", n, m.ManifestVersion, m.Base.Image)
		}
		// What new writes must parse back to the same manifest.
		data, err := encodeManifest(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := schema.ParseManifest(data)
		if err != nil {
			t.Fatalf("template %s re-encoded does not parse: %v\n%s", n, err, data)
		}
		n1, err1 := m.Normalize()
		n2, err2 := back.Normalize()
		if err1 != nil || err2 != nil || n1.PreliminaryID() != n2.PreliminaryID() {
			t.Errorf("template %s changed meaning when re-encoded (%v, %v)", n, err1, err2)
		}
	}
}

func TestNewInteractive(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	// Answers: base image (default), packages, mount, backend (3 = mock), isolation.
	answers := "\ngit, curl\n/home/me/src:/src\n3\ny\n" // "git, curl" is two packages, not "git,"
	stdout, stderr, code := runIn(t, nil, true, answers, "new", "demo")
	if code != 0 {
		t.Fatalf("new: exit %d, stderr %q", code, stderr)
	}
	if stdout != "wrote ./karapace.toml and karapace.name for 'demo'\n" {
		t.Errorf("stdout %q", stdout)
	}
	for _, q := range []string{"base image [debian/bookworm]: ", "packages (separated by spaces or commas, empty to skip): ", "mount (format '<host>:<container>', empty to skip): ", "runtime backend:", "enable network isolation? [y/N]: "} {
		if !strings.Contains(stderr, q) {
			t.Errorf("prompt %q missing from stderr %q", q, stderr)
		}
	}
	m, err := schema.LoadManifest(filepath.Join(dir, "karapace.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Base.Image != "debian/bookworm" || strings.Join(m.System.Packages, ",") != "git,curl" ||
		m.Mounts["workspace"] != "/home/me/src:/src" || m.Runtime.Backend != "mock" || !m.Runtime.NetworkIsolation {
		t.Errorf("manifest %+v", m)
	}
	// Overwrite asks; no (the default) refuses.
	_, stderr, code = runIn(t, nil, true, "\n", "new", "demo")
	if code != 1 || !strings.Contains(stderr, "overwrite ./karapace.toml? [y/N]") || !strings.Contains(stderr, "refusing to overwrite existing ./karapace.toml (pass --force)") {
		t.Errorf("overwrite: exit %d, stderr %q", code, stderr)
	}
	// A closed stdin ends the prompts with an error instead of looping.
	_, stderr, code = runIn(t, nil, true, "", "new", "demo", "--force")
	if code != 1 || !strings.Contains(stderr, "prompt failed") {
		t.Errorf("closed stdin: exit %d, stderr %q", code, stderr)
	}
}

func TestNewNonInteractive(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	_, stderr, code := runIn(t, nil, false, "", "new", "demo")
	if code != 1 || !strings.Contains(stderr, "no --template provided and stdin is not a TTY") {
		t.Errorf("no template: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runIn(t, nil, false, "", "new", "demo", "--template", "nope")
	if code != 1 || !strings.Contains(stderr, "unknown template 'nope' (expected: minimal, dev, gui-dev, rust-dev, ubuntu-dev)") {
		t.Errorf("unknown template: exit %d, stderr %q", code, stderr)
	}
	stdout, stderr, code := runIn(t, nil, false, "", "--json", "new", "demo", "--template", "minimal")
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var res newResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil || res.Status != "written" || res.Template == nil || *res.Template != "minimal" {
		t.Errorf("json %q (%v)", stdout, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "karapace.toml")); err != nil {
		t.Error(err)
	}
	_, stderr, code = runIn(t, nil, false, "", "new", "demo", "--template", "dev")
	if code != 1 || !strings.Contains(stderr, "refusing to overwrite") {
		t.Errorf("overwrite without tty: exit %d, stderr %q", code, stderr)
	}
	stdout, _, code = runIn(t, nil, false, "", "new", "demo", "--template", "dev", "--force")
	if code != 0 || stdout != "wrote ./karapace.toml and karapace.name for 'demo'\ntemplate: dev\n" {
		t.Errorf("force: exit %d, stdout %q", code, stdout)
	}
}
