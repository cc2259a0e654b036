package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// binary is the karapace binary built by TestMain; the end-to-end tests run it as a
// user would.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "karapace-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Readable by the unprivileged user of the rootless tests.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binary = filepath.Join(dir, "karapace")
	build := exec.Command("go", "build", "-o", binary, "./cmd/karapace")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building karapace:", err)
		return 1
	}
	return m.Run()
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"--version"}, strings.NewReader(""), &out, &errb)
	if code != 0 || !strings.Contains(out.String(), Version) {
		t.Fatalf("code %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
}

// world is one user's setup: a store, a project directory and an environment.
type world struct {
	t     *testing.T
	store string
	dir   string // the project directory (current directory of every run)
	env   []string
	// cred, when set, runs the binary as that user (the rootless tests).
	cred *syscall.Credential
}

func newWorld(t *testing.T) *world {
	t.Helper()
	root := t.TempDir()
	w := &world{t: t, store: filepath.Join(root, "store"), dir: filepath.Join(root, "project")}
	// Keepers of fast-path sessions (see keeper_e2e_test.go) are stopped, by pid,
	// before the store goes.
	t.Cleanup(func() { releaseKeepers(t, w.store) })
	if err := os.MkdirAll(w.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w.env = []string{
		"HOME=" + filepath.Join(root, "home"),
		"PATH=" + os.Getenv("PATH"),
		"KARAPACE_STORE=" + w.store,
		"XDG_CONFIG_HOME=" + filepath.Join(root, "config"),
	}
	return w
}

// result is one finished run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cmd prepares a run of the binary in the project directory.
func (w *world) cmd(args ...string) *exec.Cmd {
	c := exec.Command(binary, args...)
	c.Dir = w.dir
	c.Env = w.env
	if w.cred != nil {
		c.SysProcAttr = &syscall.SysProcAttr{Credential: w.cred}
	}
	return c
}

func (w *world) runStdin(stdin string, args ...string) result {
	w.t.Helper()
	c := w.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdin = strings.NewReader(stdin)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			w.t.Fatalf("running karapace %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (w *world) run(args ...string) result {
	w.t.Helper()
	return w.runStdin("", args...)
}

// ok runs and requires exit 0.
func (w *world) ok(args ...string) result {
	w.t.Helper()
	r := w.run(args...)
	if r.code != 0 {
		w.t.Fatalf("karapace %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// fail runs and requires the given exit code and a stderr containing each of want.
func (w *world) fail(code int, want []string, args ...string) result {
	w.t.Helper()
	r := w.run(args...)
	if r.code != code {
		w.t.Fatalf("karapace %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	for _, s := range want {
		if !strings.Contains(r.stderr, s) {
			w.t.Errorf("karapace %s: stderr lacks %q:\n%s", strings.Join(args, " "), s, r)
		}
	}
	return r
}

// jsonOK runs with --json, requires exit 0 and exactly one JSON document on stdout, and
// decodes it into v.
func (w *world) jsonOK(v any, args ...string) result {
	w.t.Helper()
	r := w.ok(append([]string{"--json"}, args...)...)
	decodeOne(w.t, r.stdout, v)
	return r
}

// decodeOne requires s to hold exactly one JSON document.
func decodeOne(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, s)
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		t.Fatalf("stdout holds more than one JSON document:\n%s", s)
	}
}

// manifest writes a mock-backend manifest into the project directory (or name, when
// given a path) and returns its path.
func (w *world) manifest(name, image string, packages ...string) string {
	w.t.Helper()
	quoted := make([]string, len(packages))
	for i, p := range packages {
		quoted[i] = fmt.Sprintf("%q", p)
	}
	text := fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = %q\n\n[system]\npackages = [%s]\n\n[runtime]\nbackend = \"mock\"\n",
		image, strings.Join(quoted, ", "))
	return w.write(name, text)
}

func (w *world) write(name, text string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

// buildNamed builds a manifest under a name and returns the env id.
func (w *world) buildNamed(manifest, name string) string {
	w.t.Helper()
	var res buildResult
	args := []string{"build", manifest}
	if name != "" {
		args = append(args, "--name", name)
	}
	w.jsonOK(&res, args...)
	if len(res.EnvID) != 64 {
		w.t.Fatalf("build gave env id %q", res.EnvID)
	}
	return res.EnvID
}

var (
	timeRE = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)`)
	// The metadata checksum covers the timestamps.
	checksumRE = regexp.MustCompile(`"checksum": "[0-9a-f]{64}"`)
)

// golden compares got with testdata/golden/<name>, after replacing what changes from
// run to run (timestamps, the store path); -update rewrites the file.
func (w *world) golden(name, got string) {
	w.t.Helper()
	got = timeRE.ReplaceAllString(got, "<time>")
	got = checksumRE.ReplaceAllString(got, `"checksum": "<checksum>"`)
	got = strings.ReplaceAll(got, w.store, "<store>")
	got = strings.ReplaceAll(got, w.dir, "<project>")
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			w.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			w.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		w.t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		w.t.Errorf("%s differs from its golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitLocked waits until some process holds the store lock (a slow build got going).
func (w *world) waitLocked() {
	w.t.Helper()
	lock := filepath.Join(w.store, "store", ".lock")
	waitFor(w.t, 20*time.Second, "a command to take the store lock", func() bool {
		held, err := lockHeld(lock)
		return err == nil && held
	})
}
