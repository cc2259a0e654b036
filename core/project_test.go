package core

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
)

const workspaceManifest = "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[mounts]\nworkspace = \"./:/workspace\"\n\n[runtime]\nbackend = \"mock\"\n"

// Two projects with the same manifest and a relative mount are two environments: the
// lock holds the absolute directory, and B's build --name b leaves A's name alone.
func TestRelativeMountTwoProjects(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	a, b := t.TempDir(), t.TempDir()
	ra, err := e.Build(ctx, writeManifestText(t, a, workspaceManifest), BuildOptions{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := e.Build(ctx, writeManifestText(t, b, workspaceManifest), BuildOptions{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if ra.EnvID == rb.EnvID {
		t.Fatalf("two projects share environment %s", ra.EnvID.Short())
	}
	if got := ra.Lock.Mounts[0].HostPath; got != a {
		t.Errorf("lock of A mounts %q, want %q", got, a)
	}
	if inspect(t, e, ra.EnvID).DisplayName() != "a" || inspect(t, e, rb.EnvID).DisplayName() != "b" {
		t.Errorf("names: %q %q", inspect(t, e, ra.EnvID).DisplayName(), inspect(t, e, rb.EnvID).DisplayName())
	}
	for dir, want := range map[string]schema.EnvID{a: ra.EnvID, b: rb.EnvID} {
		p, err := e.FindProject(ctx, filepath.Join(dir))
		if err != nil || p.EnvID != want || p.Drift != nil {
			t.Errorf("FindProject(%s) = %+v, %v; want %s", dir, p, err, want.Short())
		}
	}
}

// The same environment under another name is refused, not silently renamed.
func TestBuildRefusesToRenameAnotherProjectsEnv(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	a, b := t.TempDir(), t.TempDir()
	if _, err := e.Build(ctx, manifestIn(t, a, "git"), BuildOptions{Name: "a"}); err != nil {
		t.Fatal(err)
	}
	_, err := e.Build(ctx, manifestIn(t, b, "git"), BuildOptions{Name: "b"})
	if err == nil || !strings.Contains(err.Error(), "already named 'a'") {
		t.Fatalf("build --name b over a: %v", err)
	}
	if id, err := e.Resolve(ctx, "a"); err != nil || id.String() != goldenGit {
		t.Errorf("a resolves to %v %v", id, err)
	}
	// Without a name, B's build is the same environment and keeps its name.
	if r, err := e.Build(ctx, manifestIn(t, b, "git"), BuildOptions{}); err != nil || r.Name != "a" {
		t.Errorf("build in B: %+v %v", r, err)
	}
}

// An old lock (the original's, or ours before) with the mount as written keeps its id:
// it verifies, and build --locked builds the same environment.
func TestLockedBuildOfOldRelativeLock(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	path := writeManifestText(t, dir, workspaceManifest)
	m, err := schema.LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	written, err := m.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	old := schema.NewLock(written, schema.MockResolution(written))
	if err := old.WriteFile(filepath.Join(dir, schema.LockFileName)); err != nil {
		t.Fatal(err)
	}
	if old.EnvID.String() != goldenRelativeWorkspace {
		t.Fatalf("old lock id %s, want %s", old.EnvID, goldenRelativeWorkspace)
	}
	r, err := e.Build(ctx, path, BuildOptions{Locked: true})
	if err != nil {
		t.Fatal(err)
	}
	if r.EnvID != old.EnvID {
		t.Errorf("locked build of an old lock: %s, want %s", r.EnvID, old.EnvID)
	}
	// A build without --locked resolves the mount and writes the absolute form.
	r2, err := e.Build(ctx, path, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.EnvID == old.EnvID || r2.Lock.Mounts[0].HostPath != dir {
		t.Errorf("unlocked build: %s mounts %+v", r2.EnvID.Short(), r2.Lock.Mounts)
	}
}

// goldenRelativeWorkspace is the env id of workspaceManifest's mock lock with the mount
// as written ("./"), as the original computes it.
const goldenRelativeWorkspace = "c1624077970f24c28ec660dde39d7538009935d6fcafa9100247212ea9d0e4ab"

// Build after an edit moves the project's name to the new environment; the old one
// stays, unnamed.
func TestBuildAfterEditCarriesName(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	r1, err := e.Build(ctx, manifestIn(t, dir, "git"), BuildOptions{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := e.Build(ctx, manifestIn(t, dir, "git", "clang"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.EnvID == r1.EnvID || r2.Name != "web" || r2.NameFrom != r1.EnvID {
		t.Fatalf("build after edit: %+v", r2)
	}
	if n := inspect(t, e, r1.EnvID).DisplayName(); n != "" {
		t.Errorf("old environment still named %q", n)
	}
	if id, err := e.Resolve(ctx, "web"); err != nil || id != r2.EnvID {
		t.Errorf("web resolves to %v %v", id, err)
	}
	// An explicit --name the old environment holds moves too.
	r3, err := e.Build(ctx, manifestIn(t, dir, "git"), BuildOptions{Name: "web"})
	if err != nil || r3.EnvID != r1.EnvID || r3.Name != "web" {
		t.Fatalf("build --name web back: %+v %v", r3, err)
	}
	// FindProject warns about an edit not built yet.
	manifestIn(t, dir, "vim")
	if p, err := e.FindProject(ctx, filepath.Join(dir)); err != nil || p.EnvID != r1.EnvID || p.Drift == nil {
		t.Errorf("FindProject after an edit: %+v %v", p, err)
	}
}

// karapace.name names the first build; a taken name is refused and says where it
// came from.
func TestProjectNameFile(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ProjectNameFile), []byte("tools\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := e.Build(ctx, manifestIn(t, dir, "git"), BuildOptions{})
	if err != nil || r.Name != "tools" {
		t.Fatalf("build: %+v %v", r, err)
	}
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, ProjectNameFile), []byte("tools\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.Build(ctx, manifestIn(t, other, "vim"), BuildOptions{})
	if err == nil || !strings.Contains(err.Error(), ProjectNameFile) || !errors.Is(err, ErrStore) {
		t.Errorf("taken name from the file: %v", err)
	}
	if _, err := e.FindProject(ctx, other); !errors.Is(err, ErrNotFound) {
		t.Errorf("unbuilt project: %v", err)
	}
	sub := filepath.Join(dir, "src", "deep")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if p, err := e.FindProject(ctx, sub); err != nil || p.EnvID != r.EnvID {
		t.Errorf("FindProject from a subdirectory: %+v %v", p, err)
	}
}

// Rebuild refuses, before building, to destroy snapshots or writable-layer changes,
// says what, and --force drops them.
func TestRebuildRefusesToDiscard(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	dir := t.TempDir()
	path := manifestIn(t, dir, "git")
	r1, err := e.Build(ctx, path, BuildOptions{Name: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.layout.UpperDir(r1.EnvID), "notes"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Commit(ctx, r1.EnvID); err != nil {
		t.Fatal(err)
	}
	manifestIn(t, dir, "git", "clang")
	_, err = e.Rebuild(ctx, path, BuildOptions{})
	var de *DiscardError
	if !errors.As(err, &de) || !errors.Is(err, ErrWouldDiscard) {
		t.Fatalf("rebuild: %v", err)
	}
	for _, want := range []string{"'web' (" + r1.ShortID + ")", "1 snapshot", "writable layer", "--force"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("message lacks %q: %v", want, err)
		}
	}
	if envs, _ := e.List(ctx); len(envs) != 1 {
		t.Errorf("a refused rebuild built something: %d environments", len(envs))
	}
	r2, err := e.Rebuild(ctx, path, BuildOptions{Force: true})
	if err != nil || r2.Name != "web" || len(r2.Replaced) != 1 {
		t.Fatalf("rebuild --force: %+v %v", r2, err)
	}
}
