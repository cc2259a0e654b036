package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// karapace is the binary built by TestMain; the reliability tests run it as a user would.
var karapace string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	// A fuzz worker (scripts/fuzz.sh) runs only the store's decoders: no binary needed.
	for _, a := range os.Args {
		if strings.Contains(a, "test.fuzzworker") {
			return m.Run()
		}
	}
	dir, err := os.MkdirTemp("", "karapace-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	karapace = filepath.Join(dir, "karapace")
	build := exec.Command("go", "build", "-o", karapace, "../cli/cmd/karapace")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building karapace:", err)
		return 1
	}
	return m.Run()
}

// requireReal fails under CI=true and skips loudly otherwise when a component is missing.
func requireReal(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): %s", why)
	}
	t.Skipf("SKIPPING: %s (this test fails under CI=true)", why)
}

// user is one store and one project directory, driven through the binary.
type user struct {
	t     *testing.T
	store string
	dir   string
	env   []string
}

func newUser(t *testing.T, storeRoot string) *user {
	t.Helper()
	root := t.TempDir()
	if storeRoot == "" {
		storeRoot = filepath.Join(root, "store")
	}
	u := &user{t: t, store: storeRoot, dir: filepath.Join(root, "project")}
	if err := os.MkdirAll(u.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u.env = []string{
		"HOME=" + filepath.Join(root, "home"),
		"PATH=" + os.Getenv("PATH"),
		"KARAPACE_STORE=" + u.store,
		"XDG_CONFIG_HOME=" + filepath.Join(root, "config"),
	}
	return u
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

func (u *user) cmd(args ...string) *exec.Cmd {
	c := exec.Command(karapace, args...)
	c.Dir = u.dir
	c.Env = u.env
	return c
}

// run runs the binary to completion.
func (u *user) run(args ...string) result {
	u.t.Helper()
	c := u.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			u.t.Fatalf("running karapace %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

func (u *user) ok(args ...string) result {
	u.t.Helper()
	r := u.run(args...)
	if r.code != 0 {
		u.t.Fatalf("karapace %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// jsonOK runs with --json, requires exit 0 and decodes stdout into v.
func (u *user) jsonOK(v any, args ...string) {
	u.t.Helper()
	r := u.ok(append([]string{"--json"}, args...)...)
	if err := json.Unmarshal([]byte(r.stdout), v); err != nil {
		u.t.Fatalf("karapace %s: stdout is not JSON: %v\n%s", strings.Join(args, " "), err, r)
	}
}

// manifest writes a mock-backend manifest named name with the given packages.
func (u *user) manifest(name string, packages ...string) string {
	u.t.Helper()
	q := make([]string, len(packages))
	for i, p := range packages {
		q[i] = fmt.Sprintf("%q", p)
	}
	text := fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[system]\npackages = [%s]\n\n[runtime]\nbackend = \"mock\"\n", strings.Join(q, ", "))
	p := filepath.Join(u.dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		u.t.Fatal(err)
	}
	return p
}

// envRecord is the part of `list --json` the tests read.
type envRecord struct {
	EnvID string  `json:"env_id"`
	Name  *string `json:"name"`
	State string  `json:"state"`
}

func (u *user) list() map[string]envRecord {
	u.t.Helper()
	var envs []envRecord
	u.jsonOK(&envs, "list")
	out := map[string]envRecord{}
	for _, e := range envs {
		if e.Name != nil {
			out[*e.Name] = e
		}
	}
	return out
}

func (u *user) upper(id string) string { return filepath.Join(u.store, "env", id, "upper") }

// verifyClean requires verify-store to pass and the store to hold no temp files,
// staging entries or WAL entries.
func (u *user) verifyClean(when string) {
	u.t.Helper()
	r := u.run("--json", "verify-store")
	var v struct {
		Failed   int             `json:"failed"`
		Failures json.RawMessage `json:"failures"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil || r.code != 0 || v.Failed != 0 {
		u.t.Fatalf("%s: verify-store is not clean: %s", when, r)
	}
	if left := leftovers(u.store); len(left) > 0 {
		u.t.Fatalf("%s: leftovers in the store: %v", when, left)
	}
}

// leftovers lists temp files anywhere in the store, and anything in staging or the WAL.
func leftovers(root string) []string {
	var out []string
	for _, d := range []string{"store/staging", "store/wal"} {
		ents, _ := os.ReadDir(filepath.Join(root, d))
		for _, e := range ents {
			out = append(out, filepath.Join(d, e.Name()))
		}
	}
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		// What the user's tools write inside an environment is theirs.
		if d.IsDir() && d.Name() == "upper" {
			return filepath.SkipDir
		}
		if strings.HasPrefix(d.Name(), ".tmp") {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}
