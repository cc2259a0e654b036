package core

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func TestBuildGoldenIDsAndLock(t *testing.T) {
	e := newEngine(t)
	for _, tc := range []struct {
		pkgs []string
		want string
	}{
		{[]string{"git", "clang"}, goldenGitClang},
		{[]string{"git"}, goldenGit},
	} {
		path := manifest(t, tc.pkgs...)
		r, err := e.Build(context.Background(), path, BuildOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.EnvID.String() != tc.want || r.ShortID != tc.want[:12] {
			t.Errorf("%v: id %s, want %s", tc.pkgs, r.EnvID, tc.want)
		}
		lock, err := schema.ReadLock(filepath.Join(filepath.Dir(path), "karapace.lock"))
		if err != nil {
			t.Fatal(err)
		}
		if id, err := lock.VerifyIntegrity(); err != nil || id != r.EnvID {
			t.Errorf("lock: %v %v", id, err)
		}
		for _, p := range lock.ResolvedPackages {
			if p.Version != "0.0.0-mock" {
				t.Errorf("lock has version %q", p.Version)
			}
		}
		env := inspect(t, e, r.EnvID)
		if env.State != Built || env.RefCount != 1 || env.BaseLayer == "" || env.ManifestHash == "" {
			t.Errorf("metadata %+v", env)
		}
	}
	checkClean(t, e)
}

func TestSameManifestSameIDAcrossStores(t *testing.T) {
	path := manifest(t, "git", "clang")
	a := build(t, newEngine(t), path)
	b := build(t, newEngine(t), path)
	if a != b {
		t.Errorf("ids differ across stores: %s %s", a, b)
	}
	if c := build(t, newEngine(t), manifest(t, "clang", "git", "git")); c != a {
		t.Errorf("package order/duplicates changed the id: %s", c)
	}
}

func TestBuildErrors(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, tc := range []struct {
		name  string
		text  string
		opts  BuildOptions
		class error
		inner error
	}{
		{"bad toml", "manifest_version = 1\n[base\n", BuildOptions{}, ErrManifest, schema.ErrManifest},
		{"base without image", "manifest_version = 1\n[base]\n", BuildOptions{}, ErrManifest, schema.ErrManifest},
		{"unknown backend", "manifest_version = 1\n[base]\nimage = \"rolling\"\n[runtime]\nbackend = \"nosuch\"\n", BuildOptions{}, ErrRuntime, runtime.ErrBackendUnavailable},
		{"unpinned", "manifest_version = 1\n[base]\nimage = \"rolling\"\n[runtime]\nbackend = \"mock\"\n", BuildOptions{RequirePinnedImage: true}, ErrManifest, schema.ErrUnpinnedBaseImage},
		{"offline with packages", "manifest_version = 1\n[base]\nimage = \"rolling\"\n[system]\npackages = [\"git\"]\n[runtime]\nbackend = \"mock\"\n", BuildOptions{Offline: true}, ErrRuntime, runtime.ErrOffline},
		{"mount outside allowed roots", "manifest_version = 1\n[base]\nimage = \"rolling\"\n[mounts]\nx = \"/etc:/x\"\n[runtime]\nbackend = \"mock\"\n", BuildOptions{}, ErrRuntime, runtime.ErrMountDenied},
		{"locked without lock file", "manifest_version = 1\n[base]\nimage = \"rolling\"\n[runtime]\nbackend = \"mock\"\n", BuildOptions{Locked: true}, ErrLockFile, schema.ErrLock},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			d := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := e.Build(ctx, writeManifestText(t, d, tc.text), tc.opts)
			if !errors.Is(err, tc.class) || !errors.Is(err, tc.inner) {
				t.Fatalf("err = %v, want %v and %v", err, tc.class, tc.inner)
			}
			if envs, _ := e.List(ctx); len(envs) != 0 {
				t.Errorf("failed build left %d environments", len(envs))
			}
			if ents, _ := os.ReadDir(filepath.Join(e.Root(), "env")); len(ents) != 0 {
				t.Errorf("failed build left env dirs: %v", ents)
			}
		})
	}
	_, err := newEngine(t).Build(ctx, filepath.Join(dir, "missing.toml"), BuildOptions{})
	if !errors.Is(err, ErrManifest) || !strings.HasPrefix(err.Error(), "manifest error: ") {
		t.Errorf("missing manifest: %v", err)
	}
}

func TestBuildBackendFailureRollsBack(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	_, err := e.Build(ctx, manifest(t, "mock-fail-build"), BuildOptions{})
	if !errors.Is(err, ErrRuntime) || !errors.Is(err, runtime.ErrExecFailed) {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(e.Root(), "env")); len(ents) != 0 {
		t.Errorf("env dirs left: %v", ents)
	}
	checkClean(t, e)
}

// TestBuildOverExistingKeepsData is the fix of spec 5.7/5.8: building over an existing
// environment keeps its name, creation time and writable layer, and a failed build
// over it deletes nothing.
func TestBuildOverExistingKeepsData(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	path := manifest(t, "git")
	id := build(t, e, path)
	if err := e.Rename(ctx, id, "keep"); err != nil {
		t.Fatal(err)
	}
	before := inspect(t, e, id)
	data := filepath.Join(e.Root(), "env", id.String(), "upper", "work.txt")
	if err := os.WriteFile(data, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	id2 := build(t, e, path)
	after := inspect(t, e, id2)
	if id2 != id || after.DisplayName() != "keep" || after.CreatedAt != before.CreatedAt {
		t.Errorf("rebuild lost identity: %+v (was %+v)", after, before)
	}
	if b, err := os.ReadFile(data); err != nil || string(b) != "precious" {
		t.Errorf("user data lost: %q %v", b, err)
	}
	// A failing build over it (the backend fails after writing) deletes nothing.
	fail := newEngineAt(t, e.Root(), func(o *Options) {
		o.Backends = mockBackends(mockFailOpts())
	})
	if _, err := fail.Build(ctx, path, BuildOptions{}); err == nil {
		t.Fatal("build with failing backend succeeded")
	}
	if b, err := os.ReadFile(data); err != nil || string(b) != "precious" {
		t.Errorf("failed build destroyed user data: %q %v", b, err)
	}
	wantState(t, e, id, Built)
	checkClean(t, e)
}

func TestBuildWithNameAndLocked(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	path := manifest(t, "git")
	r, err := e.Build(ctx, path, BuildOptions{Name: "web"})
	if err != nil || r.Name != "web" {
		t.Fatalf("build: %+v %v", r, err)
	}
	lockBefore, _ := os.ReadFile(r.LockPath)
	r2, err := e.Build(ctx, path, BuildOptions{Locked: true})
	if err != nil || r2.EnvID != r.EnvID {
		t.Fatalf("locked build: %+v %v", r2, err)
	}
	// Drift: the manifest gains a package the lock does not have.
	manifestIn(t, filepath.Dir(path), "git", "vim")
	if _, err := e.Build(ctx, path, BuildOptions{Locked: true}); !errors.Is(err, ErrLockFile) {
		t.Errorf("locked build with drift: %v", err)
	}
	if after, _ := os.ReadFile(r.LockPath); !bytes.Equal(after, lockBefore) {
		t.Error("a locked build rewrote the lock file")
	}
	// A name already taken is refused before anything is built.
	other := manifest(t, "clang")
	if _, err := e.Build(ctx, other, BuildOptions{Name: "web"}); !errors.Is(err, ErrStore) || !errors.Is(err, store.ErrNameConflict) {
		t.Errorf("name conflict: %v", err)
	}
	if _, err := e.Build(ctx, other, BuildOptions{Name: "bad name"}); !errors.Is(err, store.ErrInvalidName) {
		t.Errorf("invalid name: %v", err)
	}
}

func TestInit(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	path := manifest(t, "git", "clang")
	r, err := e.Init(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if r.EnvID.String() != goldenPrelimGitClang {
		t.Errorf("init id %s, want %s", r.EnvID, goldenPrelimGitClang)
	}
	env := inspect(t, e, r.EnvID)
	if env.State != Defined || env.BaseLayer != "" {
		t.Errorf("init metadata %+v", env)
	}
	lock, err := os.ReadFile(r.LockPath)
	if err != nil || !bytes.Contains(lock, []byte("lock_version = 2")) || !bytes.Contains(lock, []byte("unresolved")) {
		t.Errorf("init lock %q %v", lock, err)
	}
	// Idempotent.
	if r2, err := e.Init(ctx, path); err != nil || r2.EnvID != r.EnvID {
		t.Errorf("second init: %+v %v", r2, err)
	}
	// Init then build: the build replaces nothing but works, and its lock is real.
	b := build(t, e, path)
	if b.String() != goldenGitClang {
		t.Errorf("build after init: %s", b)
	}
	real, _ := os.ReadFile(r.LockPath)
	// Init never overwrites a real lock (fix of spec 5.2), so build --locked still works.
	if _, err := e.Init(ctx, path); err != nil {
		t.Fatal(err)
	}
	if after, _ := os.ReadFile(r.LockPath); !bytes.Equal(after, real) {
		t.Error("init overwrote a real lock")
	}
	if _, err := e.Build(ctx, path, BuildOptions{Locked: true}); err != nil {
		t.Errorf("init then build --locked: %v", err)
	}
}

func TestRebuild(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	path := manifestIn(t, dir, "git")
	old := build(t, e, path)
	if err := e.Rename(ctx, old, "proj"); err != nil {
		t.Fatal(err)
	}
	created := inspect(t, e, old).CreatedAt
	// Same id: kept as is.
	r, err := e.Rebuild(ctx, path, BuildOptions{})
	if err != nil || r.EnvID != old || r.Name != "proj" || inspect(t, e, old).CreatedAt != created {
		t.Fatalf("same-id rebuild: %+v %v", r, err)
	}
	// Different packages: new id, old one destroyed, name carried over.
	manifestIn(t, dir, "git", "clang")
	r, err = e.Rebuild(ctx, path, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r.EnvID == old || r.Name != "proj" || len(r.Replaced) != 1 || r.Replaced[0] != old {
		t.Errorf("rebuild result %+v", r)
	}
	if _, err := e.Inspect(ctx, old); !errors.Is(err, ErrNotFound) {
		t.Errorf("old env still there: %v", err)
	}
	if exists(filepath.Join(e.Root(), "env", old.String())) {
		t.Error("old env dir still there")
	}
	// An archived environment rebuilds to Built.
	if err := e.Archive(ctx, r.EnvID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rebuild(ctx, path, BuildOptions{}); err != nil {
		t.Fatal(err)
	}
	wantState(t, e, r.EnvID, Built)
	checkClean(t, e)
}

func TestRebuildKeepsOldWhenItCannotBeDestroyed(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	path := manifestIn(t, dir, "git")
	old := build(t, e, path)
	stopSession := startSession(t, e, old)
	defer stopSession()
	manifestIn(t, dir, "git", "clang")
	r, err := e.Rebuild(ctx, path, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Replaced) != 0 {
		t.Errorf("replaced a running env: %+v", r)
	}
	wantState(t, e, old, Running) // fix of 5.8: metadata kept when destroy fails
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	steps := []struct {
		name string
		op   func() error
		want State
		err  error
	}{
		{"freeze built", func() error { return e.Freeze(ctx, id) }, Frozen, nil},
		{"enter frozen", func() error { _, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"true"}); return err }, Frozen, ErrInvalidTransition},
		{"freeze frozen", func() error { return e.Freeze(ctx, id) }, Frozen, ErrInvalidTransition},
		{"commit frozen", func() error { _, err := e.Commit(ctx, id); return err }, Frozen, nil},
		{"archive frozen", func() error { return e.Archive(ctx, id) }, Archived, nil},
		{"enter archived", func() error { _, err := e.Enter(ctx, id, runtime.Stdio{}, nil); return err }, Archived, ErrInvalidTransition},
		{"commit archived", func() error { _, err := e.Commit(ctx, id); return err }, Archived, ErrInvalidTransition},
		{"freeze archived", func() error { return e.Freeze(ctx, id) }, Archived, ErrInvalidTransition},
		{"stop archived", func() error { return e.Stop(ctx, id) }, Archived, runtime.ErrNotRunning},
	}
	for _, s := range steps {
		err := s.op()
		if (s.err == nil) != (err == nil) || (s.err != nil && !errors.Is(err, s.err)) {
			t.Fatalf("%s: err = %v, want %v", s.name, err, s.err)
		}
		wantState(t, e, id, s.want)
	}
	_, err := e.Enter(ctx, id, runtime.Stdio{}, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "invalid state transition: archived -> running; ") {
		t.Errorf("enter archived message: %v", err)
	}
	if _, err := e.Commit(ctx, id); err == nil || err.Error() != "invalid state transition: archived -> commit requires built or frozen state" {
		t.Errorf("commit archived message: %v", err)
	}
	if err := e.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Inspect(ctx, id); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "not found") {
		t.Errorf("inspect destroyed: %v", err)
	}
	checkClean(t, e)
}

func TestNotFound(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := schema.SumString("nothing")
	for name, op := range map[string]func() error{
		"inspect":   func() error { _, err := e.Inspect(ctx, id); return err },
		"destroy":   func() error { return e.Destroy(ctx, id) },
		"freeze":    func() error { return e.Freeze(ctx, id) },
		"archive":   func() error { return e.Archive(ctx, id) },
		"rename":    func() error { return e.Rename(ctx, id, "x") },
		"stop":      func() error { return e.Stop(ctx, id) },
		"commit":    func() error { _, err := e.Commit(ctx, id); return err },
		"restore":   func() error { return e.Restore(ctx, id, id) },
		"snapshots": func() error { _, err := e.Snapshots(ctx, id); return err },
		"diff":      func() error { _, err := e.Diff(ctx, id); return err },
		"exec":      func() error { _, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"x"}); return err },
	} {
		if err := op(); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if envs, err := e.List(ctx); err != nil || len(envs) != 0 {
		t.Errorf("list of empty store: %v %v", envs, err)
	}
}

func TestListRenameResolve(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	a := build(t, e, manifest(t, "git"))
	b := build(t, e, manifest(t, "git", "clang"))
	envs, err := e.List(ctx)
	if err != nil || len(envs) != 2 || envs[0].EnvID.String() > envs[1].EnvID.String() {
		t.Fatalf("list %v %v", envs, err)
	}
	if err := e.Rename(ctx, a, "alpha"); err != nil {
		t.Fatal(err)
	}
	if err := e.Rename(ctx, a, "alpha"); err != nil {
		t.Errorf("renaming to its own name: %v", err)
	}
	if err := e.Rename(ctx, b, "alpha"); !errors.Is(err, ErrStore) || !errors.Is(err, store.ErrNameConflict) {
		t.Errorf("conflict: %v", err)
	}
	for _, bad := range []string{"", "has space", "a/b", "x.y", strings.Repeat("n", 65)} {
		if err := e.Rename(ctx, b, bad); !errors.Is(err, store.ErrInvalidName) {
			t.Errorf("rename %q: %v", bad, err)
		}
	}
	for ref, want := range map[string]schema.EnvID{"alpha": a, a.String(): a, b.Short(): b, b.String()[:20]: b} {
		if got, err := e.Resolve(ctx, ref); err != nil || got != want {
			t.Errorf("resolve %q: %v %v", ref, got, err)
		}
	}
	for ref, class := range map[string]error{"../x": ErrInvalidRef, "/etc": ErrInvalidRef, "zzz": ErrNotFound} {
		if _, err := e.Resolve(ctx, ref); !errors.Is(err, class) {
			t.Errorf("resolve %q: %v", ref, err)
		}
	}
}

func TestExecAndEnter(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	var out, errb bytes.Buffer
	st, err := e.Exec(ctx, id, runtime.Stdio{Stdout: &out, Stderr: &errb}, []string{"echo", "hi"})
	if err != nil || st != 0 || out.String() != "mock-exec: echo hi\n" {
		t.Errorf("exec: %d %v %q", st, err, out.String())
	}
	if st, err := e.Exec(ctx, id, runtime.Stdio{}, []string{"mock:exit", "7"}); err != nil || st != 7 {
		t.Errorf("exit status: %d %v", st, err)
	}
	start := time.Now()
	if st, err := e.Enter(ctx, id, runtime.Stdio{}, nil); err != nil || st != 0 {
		t.Errorf("enter: %d %v", st, err)
	}
	if d := time.Since(start); d > time.Second { // environment_entry_under_1_second
		t.Errorf("enter took %s", d)
	}
	wantState(t, e, id, Built)
	checkClean(t, e)
}

func TestDestroyRunningRefused(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	stop := startSession(t, e, id)
	err := e.Destroy(ctx, id)
	if !errors.Is(err, ErrInvalidTransition) || !strings.Contains(err.Error(), "running") {
		t.Errorf("destroy running: %v", err)
	}
	stop()
	if err := e.Destroy(ctx, id); err != nil {
		t.Errorf("destroy after stop: %v", err)
	}
	checkClean(t, e)
}

func TestVersionMismatch(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	build(t, e, manifest(t, "git"))
	if err := os.WriteFile(filepath.Join(e.Root(), "store", "version"), []byte(`{"format_version": 1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := e.Build(ctx, manifest(t, "clang"), BuildOptions{})
	if !errors.Is(err, ErrStore) || !errors.Is(err, store.ErrVersionMismatch) || !strings.Contains(err.Error(), "version") {
		t.Errorf("old store: %v", err)
	}
}

func TestHostUntouched(t *testing.T) {
	// Everything an Engine writes stays under the store root and the project dir.
	ctx := context.Background()
	root, proj := t.TempDir(), t.TempDir()
	outside := t.TempDir()
	t.Setenv("HOME", outside)
	e := newEngineAt(t, root)
	path := manifestIn(t, proj, "git")
	id := build(t, e, path)
	if _, err := e.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := e.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("HOME touched: %v", ents)
	}
}

// driftingBackend resolves the base image to another digest than the mock: what a
// registry moving a tag under a locked build looks like.
type driftingBackend struct{ *mock.Backend }

func (d driftingBackend) Resolve(ctx context.Context, spec *runtime.Spec) (schema.Resolution, error) {
	r, err := d.Backend.Resolve(ctx, spec)
	r.BaseImageDigest = schema.SumString("moved").String()
	return r, err
}

func TestLockedBuildRefusesAnotherResolution(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	path := manifest(t, "git")
	build(t, newEngineAt(t, root), path)
	e := newEngineAt(t, root, func(o *Options) {
		o.Backends = map[string]func() runtime.Backend{mock.Name: func() runtime.Backend { return driftingBackend{mock.New(mock.Options{})} }}
	})
	_, err := e.Build(ctx, path, BuildOptions{Locked: true})
	if !errors.Is(err, ErrLockFile) || !strings.Contains(err.Error(), "locked mode: lock env_id") {
		t.Errorf("locked build with a moved image: %v", err)
	}
	if _, err := e.Build(ctx, path, BuildOptions{}); err != nil {
		t.Errorf("unlocked build re-resolves: %v", err)
	}
}
