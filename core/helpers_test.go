package core

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
)

// Golden ids from the original's test-suite (spec 1.5, 1.6): the mock build of
// `rolling` with packages git and clang, and with git only.
const (
	goldenGitClang = "5e07b4d895397108c26d04cee57fc26755b8903b2dd5a59eab534ca1a62fcf1b"
	goldenGit      = "78232f730f707cdbb45a92090780c08e7f8b6c396b936bd4d57e001f0354a1e3"
	// The preliminary id of the git+clang mock manifest (what Init records).
	goldenPrelimGitClang = "85eeb6126bfb149576aae001bfd346452e98a5125598ae0a62795d0c5939df80"
)

func mockBackends(o mock.Options) map[string]func() runtime.Backend {
	return map[string]func() runtime.Backend{mock.Name: func() runtime.Backend { return mock.New(o) }}
}

// newEngine returns an Engine on a fresh store with the mock backend.
func newEngine(t testing.TB, mutate ...func(*Options)) *Engine {
	t.Helper()
	return newEngineAt(t, t.TempDir(), mutate...)
}

func newEngineAt(t testing.TB, root string, mutate ...func(*Options)) *Engine {
	t.Helper()
	o := Options{StoreRoot: root, Backends: mockBackends(mock.Options{})}
	for _, m := range mutate {
		m(&o)
	}
	e, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// manifest writes a mock manifest (image `rolling`) into a fresh project directory and
// returns its path.
func manifest(t testing.TB, pkgs ...string) string {
	t.Helper()
	return manifestIn(t, t.TempDir(), pkgs...)
}

func manifestIn(t testing.TB, dir string, pkgs ...string) string {
	t.Helper()
	q := make([]string, len(pkgs))
	for i, p := range pkgs {
		q[i] = fmt.Sprintf("%q", p)
	}
	text := fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[system]\npackages = [%s]\n\n[runtime]\nbackend = \"mock\"\n", strings.Join(q, ", "))
	return writeManifestText(t, dir, text)
}

func writeManifestText(t testing.TB, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "karapace.toml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func build(t testing.TB, e *Engine, path string) schema.EnvID {
	t.Helper()
	r, err := e.Build(context.Background(), path, BuildOptions{})
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	return r.EnvID
}

func inspect(t testing.TB, e *Engine, id schema.EnvID) *Env {
	t.Helper()
	m, err := e.Inspect(context.Background(), id)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return m
}

func wantState(t testing.TB, e *Engine, id schema.EnvID, s State) {
	t.Helper()
	if got := inspect(t, e, id).State; got != s {
		t.Fatalf("state %s, want %s", got, s)
	}
}

// walEntries counts the WAL entries left in a store.
func walEntries(t testing.TB, root string) int {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, "store", "wal"))
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") {
			n++
		}
	}
	return n
}

// checkClean asserts what every operation must leave behind: no WAL entry, a store
// that verifies, no environment stuck Running.
func checkClean(t testing.TB, e *Engine) {
	t.Helper()
	if n := walEntries(t, e.Root()); n != 0 {
		t.Errorf("%d WAL entries left", n)
	}
	rep, err := e.Verify(context.Background())
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.OK() {
		t.Errorf("verify failed: %+v", rep.Failed)
	}
	envs, err := e.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		if env.State == Running {
			t.Errorf("env %s stuck Running", env.ShortID)
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// execCmd gives exec.Cmd's Wait an error that includes the exit status.
type execCmd struct{ *exec.Cmd }

func (c *execCmd) Wait() error {
	if err := c.Cmd.Wait(); err != nil {
		return fmt.Errorf("%v (%s)", err, c.ProcessState)
	}
	return nil
}
