package core

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/export"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
)

// appsManifest writes a mock manifest with gui apps.
func appsManifest(t testing.TB, dir string, pkgs string, apps ...string) string {
	t.Helper()
	q := make([]string, len(apps))
	for i, a := range apps {
		q[i] = `"` + a + `"`
	}
	return writeManifestText(t, dir, "manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[system]\npackages = ["+pkgs+"]\n\n[gui]\napps = ["+strings.Join(q, ", ")+"]\n\n[runtime]\nbackend = \"mock\"\n")
}

// TestGUIAppsExportedOnBuild: `[gui] apps` are installed as packages and exported as a
// launcher and a desktop entry on build, moved to the new environment by a rebuild, and
// removed on destroy. The export directories are temporary (never the real ~/.local).
func TestGUIAppsExportedOnBuild(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	dirs := export.Dirs{Bin: filepath.Join(home, "bin"), Applications: filepath.Join(home, "apps")}
	e := newEngine(t, func(o *Options) { o.ExportDirs = &dirs; o.Executable = "/opt/karapace" })
	project := t.TempDir()
	r, err := e.Build(ctx, appsManifest(t, project, `"git"`, "editor", "git"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id := r.EnvID
	if !slices.Equal(r.Exported, []string{"editor", "git"}) {
		t.Errorf("exported %v", r.Exported)
	}
	for _, p := range []string{".pkg-editor", ".pkg-git"} {
		if !exists(filepath.Join(e.layout.UpperDir(id), p)) {
			t.Errorf("app package %s not installed", p)
		}
	}
	launcher := filepath.Join(dirs.Bin, "editor")
	b, err := os.ReadFile(launcher)
	if err != nil {
		t.Fatal(err)
	}
	want := "exec '/opt/karapace' '--store' '" + e.Root() + "' 'exec' '" + id.String() + "' '--' 'editor' \"$@\""
	if !strings.Contains(string(b), want) {
		t.Errorf("launcher:\n%s\nwant a line %s", b, want)
	}
	if fi, err := os.Stat(launcher); err != nil || fi.Mode()&0o111 == 0 {
		t.Errorf("launcher not executable: %v %v", fi, err)
	}
	desktop := filepath.Join(dirs.Applications, "karapace-"+id.Short()+"-editor.desktop")
	if b, err := os.ReadFile(desktop); err != nil || !strings.Contains(string(b), launcher) {
		t.Errorf("desktop entry: %v\n%s", err, b)
	}
	list, err := export.List(ctx, dirs, id)
	if err != nil || len(list) != 2 {
		t.Errorf("exports %+v %v", list, err)
	}

	// A rebuild with another id moves the exports to the new environment.
	r2, err := e.Rebuild(ctx, appsManifest(t, project, `"git", "clang"`, "editor", "git"), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r2.EnvID == id || len(r2.Replaced) != 1 {
		t.Fatalf("rebuild %+v", r2)
	}
	if old, _ := export.List(ctx, dirs, id); len(old) != 0 {
		t.Errorf("exports of the replaced environment left: %+v", old)
	}
	if cur, err := export.List(ctx, dirs, r2.EnvID); err != nil || len(cur) != 2 {
		t.Errorf("exports after rebuild %+v %v", cur, err)
	}

	if err := e.Destroy(ctx, r2.EnvID); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dirs.Bin, dirs.Applications} {
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s not empty after destroy: %v", d, ents)
		}
	}
	checkClean(t, e)
}

// TestGUIAppExportFailureIsAWarning: an app whose launcher name is taken by a file
// karapace does not own is not exported, and the build still succeeds.
func TestGUIAppExportFailureIsAWarning(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	dirs := export.Dirs{Bin: filepath.Join(home, "bin"), Applications: filepath.Join(home, "apps")}
	if err := os.MkdirAll(dirs.Bin, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dirs.Bin, "editor")
	if err := os.WriteFile(mine, []byte("#!/bin/sh\necho mine\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEngine(t, func(o *Options) { o.ExportDirs = &dirs })
	r, err := e.Build(ctx, appsManifest(t, t.TempDir(), "", "editor", "viewer"), BuildOptions{})
	if err != nil {
		t.Fatalf("build failed over an export conflict: %v", err)
	}
	if !slices.Equal(r.Exported, []string{"viewer"}) {
		t.Errorf("exported %v", r.Exported)
	}
	if b, _ := os.ReadFile(mine); string(b) != "#!/bin/sh\necho mine\n" {
		t.Errorf("user's file overwritten: %q", b)
	}
	if err := e.Destroy(ctx, r.EnvID); err != nil {
		t.Fatal(err)
	}
	if !exists(mine) || exists(filepath.Join(dirs.Bin, "viewer")) {
		t.Error("destroy removed the wrong files")
	}
}

// TestGUIAppsOffline: apps are packages, so an offline build with apps is refused as
// one with system packages is.
func TestGUIAppsOffline(t *testing.T) {
	home := t.TempDir()
	dirs := export.Dirs{Bin: filepath.Join(home, "bin"), Applications: filepath.Join(home, "apps")}
	e := newEngine(t, func(o *Options) { o.ExportDirs = &dirs })
	_, err := e.Build(context.Background(), appsManifest(t, t.TempDir(), "", "editor"), BuildOptions{Offline: true})
	if err == nil || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline build with apps: %v", err)
	}
}

// TestExportAppCommands: `export-app` writes a launcher and a desktop entry for any
// command of a built environment, `unexport-app` removes them, and an environment that
// was never built cannot export.
func TestExportAppCommands(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	dirs := export.Dirs{Bin: filepath.Join(home, "bin"), Applications: filepath.Join(home, "apps")}
	e := newEngine(t, func(o *Options) { o.ExportDirs = &dirs; o.Executable = "/opt/karapace" })
	r, err := e.Build(ctx, appsManifest(t, t.TempDir(), `"git"`), BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := e.ExportApp(ctx, r.EnvID, "gitk", []string{"git", "log", "--graph"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(got.Launcher)
	if err != nil || !strings.Contains(string(b), "'exec' '"+r.EnvID.String()+"' '--' 'git' 'log' '--graph' \"$@\"") {
		t.Fatalf("launcher %s: %v\n%s", got.Launcher, err, b)
	}
	if _, err := os.Stat(got.Desktop); err != nil {
		t.Fatal(err)
	}
	if apps, err := e.Apps(ctx, r.EnvID); err != nil || len(apps) != 1 || apps[0].Name != "gitk" {
		t.Fatalf("apps %+v %v", apps, err)
	}
	if _, err := e.ExportApp(ctx, r.EnvID, "../evil", []string{"true"}); err == nil {
		t.Fatal("a name with a path was accepted")
	}
	if err := e.UnexportApp(ctx, r.EnvID, "gitk"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{got.Launcher, got.Desktop} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still there: %v", p, err)
		}
	}
	if err := e.UnexportApp(ctx, r.EnvID, "gitk"); err == nil {
		t.Error("unexporting twice succeeded")
	}
	init, err := e.Init(ctx, appsManifest(t, t.TempDir(), `"vim"`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.ExportApp(ctx, init.EnvID, "vim", []string{"vim"}); err == nil {
		t.Error("a Defined environment exported an app")
	}
}

// TestGUIAppsPinned: a build pins `[gui] apps` in the lock like system packages (one
// entry for an app that is also a system package), and a locked build from that lock
// gives the same id. A lock that did not pin an app (the original's) still builds
// locked, to its own id, and installs the app by name.
func TestGUIAppsPinned(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	dirs := export.Dirs{Bin: filepath.Join(home, "bin"), Applications: filepath.Join(home, "apps")}
	e := newEngine(t, func(o *Options) { o.ExportDirs = &dirs })
	project := t.TempDir()
	manifest := appsManifest(t, project, `"git"`, "editor", "git")
	r, err := e.Build(ctx, manifest, BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []schema.ResolvedPackage{{Name: "editor", Version: mock.Version}, {Name: "git", Version: mock.Version}}
	if !slices.Equal(r.Lock.ResolvedPackages, want) || !slices.Equal(r.Lock.ResolvedApps, []string{"editor", "git"}) {
		t.Fatalf("lock pins %v, apps %v; want %v", r.Lock.ResolvedPackages, r.Lock.ResolvedApps, want)
	}
	onDisk, err := schema.ReadLock(filepath.Join(project, "karapace.lock"))
	if err != nil || !slices.Equal(onDisk.ResolvedPackages, want) || onDisk.EnvID != r.EnvID {
		t.Fatalf("karapace.lock: %+v, %v", onDisk, err)
	}
	again, err := e.Build(ctx, manifest, BuildOptions{Locked: true})
	if err != nil || again.EnvID != r.EnvID {
		t.Fatalf("locked build: %v, id %v want %v", err, again, r.EnvID)
	}

	// The original's lock of the same manifest: git pinned, the apps listed only.
	text, err := os.ReadFile(manifest)
	if err != nil {
		t.Fatal(err)
	}
	n, err := schema.ParseManifest(text)
	if err != nil {
		t.Fatal(err)
	}
	norm, err := n.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	old := schema.NewLock(norm, schema.Resolution{BaseImageDigest: r.Lock.BaseImageDigest,
		ResolvedPackages: []schema.ResolvedPackage{{Name: "git", Version: mock.Version}}})
	if old.EnvID == r.EnvID {
		t.Fatal("a lock without the app pins has the same id")
	}
	if err := old.WriteFile(filepath.Join(project, "karapace.lock")); err != nil {
		t.Fatal(err)
	}
	r2, err := e.Build(ctx, manifest, BuildOptions{Locked: true})
	if err != nil || r2.EnvID != old.EnvID {
		t.Fatalf("locked build from an unpinned lock: %v, %+v, want id %v", err, r2, old.EnvID)
	}
	if !exists(filepath.Join(e.layout.UpperDir(r2.EnvID), ".pkg-editor")) {
		t.Error("the unpinned app is not installed")
	}
	for _, id := range []schema.EnvID{r.EnvID, r2.EnvID} {
		if err := e.Destroy(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}
