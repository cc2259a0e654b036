package core

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
)

// privateDirs are the directories of a store that keep its environments from other
// users: the root, env/, env/<id> and staging (where layers are unpacked).
func privateDirs(e *Engine, id schema.EnvID) []string {
	return []string{e.Root(), e.layout.EnvDir(), e.layout.EnvPath(id), e.layout.StagingDir()}
}

func wantPrivate(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o700 {
			t.Errorf("%s: mode %v, want 0700", d, perm)
		}
	}
}

// wantSetuid checks that a set-id file survived and sits inside env/<id>, private.
func wantSetuid(t *testing.T, e *Engine, id schema.EnvID, p string) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&fs.ModeSetuid == 0 {
		t.Errorf("%s lost its setuid bit: %v", p, fi.Mode())
	}
	wantPrivate(t, privateDirs(e, id)...)
}

// TestStoreIsPrivate: a built, a restored and a pulled environment live in 0700
// directories only, and the set-id files of their layers stay inside them.
func TestStoreIsPrivate(t *testing.T) {
	ctx := context.Background()
	// The build itself leaves a setuid file (as `chmod 4755` inside would), so the
	// base layer and every snapshot carry one.
	hook := func(_ context.Context, spec *runtime.Spec) error {
		p := filepath.Join(spec.EnvDir, "upper", "usr", "bin", "suid")
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			return err
		}
		return os.Chmod(p, 0o755|fs.ModeSetuid)
	}
	e := newEngine(t, func(o *Options) { o.Backends = mockBackends(mock.Options{BuildHook: hook}) })
	id := build(t, e, manifest(t, "git"))
	suid := filepath.Join(e.layout.UpperDir(id), "usr", "bin", "suid")
	wantSetuid(t, e, id, suid)

	key, err := e.Commit(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(suid); err != nil {
		t.Fatal(err)
	}
	if err := e.Restore(ctx, id, key); err != nil {
		t.Fatal(err)
	}
	wantSetuid(t, e, id, suid)

	rb := remote.NewMemory()
	if _, err := e.Push(ctx, id, rb, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newEngine(t)
	if _, err := dst.Pull(ctx, id.String(), rb); err != nil {
		t.Fatal(err)
	}
	wantSetuid(t, dst, id, filepath.Join(dst.layout.UpperDir(id), "usr", "bin", "suid"))
	checkClean(t, dst)
}

// TestWritersTightenTheStore: a store left 0755 (an older version, or a --store
// directory that was open) keeps its modes through read-only use and is made private
// by the first command that changes it.
func TestWritersTightenTheStore(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	id := build(t, newEngineAt(t, root), manifest(t, "git"))
	e := newEngineAt(t, root)
	dirs := privateDirs(e, id)
	for _, d := range dirs {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r := newEngineAt(t, root) // recovery runs under the exclusive lock, and must not chmod
	if _, err := r.List(ctx); err != nil {
		t.Fatal(err)
	}
	inspect(t, r, id)
	if _, err := r.Diff(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Snapshots(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if fi, err := os.Stat(d); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("a read-only command changed %s: %v %v", d, fi.Mode(), err)
		}
	}
	if err := e.Rename(ctx, id, "private"); err != nil {
		t.Fatal(err)
	}
	wantPrivate(t, dirs...)
}
