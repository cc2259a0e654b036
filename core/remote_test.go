package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/runtime"
)

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	rb := remote.NewMemory()
	src := newEngine(t)
	id := build(t, src, manifest(t, "git"))
	if err := src.Rename(ctx, id, "shared"); err != nil {
		t.Fatal(err)
	}
	pr, err := src.Push(ctx, id, rb, PushOptions{Tag: "shared@v1"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.ObjectsPushed == 0 || pr.LayersPushed == 0 || pr.Tag != "shared@v1" {
		t.Errorf("push result %+v", pr)
	}
	again, err := src.Push(ctx, id, rb, PushOptions{})
	if err != nil || again.ObjectsPushed != 0 || again.ObjectsSkipped == 0 {
		t.Errorf("second push %+v %v", again, err)
	}
	dst := newEngine(t)
	for _, ref := range []string{"shared@v1", id.String()} {
		r, err := dst.Pull(ctx, ref, rb)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if r.EnvID != id {
			t.Errorf("pulled %s, want %s", r.EnvID, id)
		}
	}
	got := inspect(t, dst, id)
	if got.DisplayName() != "shared" || got.BaseLayer != inspect(t, src, id).BaseLayer {
		t.Errorf("pulled metadata %+v", got)
	}
	checkClean(t, dst)
	if _, err := dst.Pull(ctx, "nosuch@v1", rb); !errors.Is(err, ErrRemote) || !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("pull of a missing ref: %v", err)
	}
	if _, err := src.Push(ctx, id, rb, PushOptions{Tag: "bad tag"}); !errors.Is(err, ErrRemote) {
		t.Errorf("bad tag: %v", err)
	}
}

// TestPullMaterializes: a pulled environment is ready to enter at once: its writable
// layer is the base layer's content, byte for byte, and Exec works without a rebuild.
func TestPullMaterializes(t *testing.T) {
	ctx := context.Background()
	rb := remote.NewMemory()
	src := newEngine(t)
	id := build(t, src, manifest(t, "git", "clang"))
	if _, err := src.Push(ctx, id, rb, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newEngine(t)
	if _, err := dst.Pull(ctx, id.String(), rb); err != nil {
		t.Fatal(err)
	}
	want := treeText(t, src.layout.UpperDir(id))
	if got := treeText(t, dst.layout.UpperDir(id)); got != want || !strings.Contains(got, ".pkg-clang") {
		t.Errorf("pulled upper:\n%s\nwant:\n%s", got, want)
	}
	var out strings.Builder
	if code, err := dst.Exec(ctx, id, runtime.Stdio{Stdout: &out}, []string{"echo", "hi"}); err != nil || code != 0 || out.String() != "mock-exec: echo hi\n" {
		t.Errorf("exec after pull: %d %v %q", code, err, out.String())
	}
	wantState(t, dst, id, Built)
	if ents, _ := os.ReadDir(dst.layout.StagingDir()); len(ents) != 0 {
		t.Errorf("staging left: %v", ents)
	}
	// Pulling again keeps the local writable layer (local changes survive).
	if err := os.WriteFile(filepath.Join(dst.layout.UpperDir(id), "local"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.Pull(ctx, id.String(), rb); err != nil {
		t.Fatal(err)
	}
	if !exists(filepath.Join(dst.layout.UpperDir(id), "local")) {
		t.Error("a second pull replaced the local writable layer")
	}
	checkClean(t, dst)
}

// TestPullLogsPhases: a pull says at debug level how long its transfer and its
// materialization took (karabench reads these from `karapace -v pull`).
func TestPullLogsPhases(t *testing.T) {
	ctx := context.Background()
	rb := remote.NewMemory()
	src := newEngine(t)
	id := build(t, src, manifest(t, "git"))
	if _, err := src.Push(ctx, id, rb, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs safeBuffer
	dst := newEngine(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	if _, err := dst.Pull(ctx, id.String(), rb); err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{`msg="pull: blobs transferred"`, `msg="pull: environment materialized"`} {
		found := false
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, msg) && strings.Contains(l, " took=") && strings.Contains(l, "env="+id.Short()) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s line with took= in:\n%s", msg, logs.String())
		}
	}
}

// safeBuffer is a bytes.Buffer for a logger that may be called from several goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPullFailureLeavesNothing: a pull whose materialization fails (the backend is not
// available here) rolls back: no environment, no directory, no WAL entry; a retry with
// the backend succeeds without downloading the blobs again.
func TestPullFailureLeavesNothing(t *testing.T) {
	ctx := context.Background()
	rb := remote.NewMemory()
	src := newEngine(t)
	id := build(t, src, manifest(t, "git"))
	if _, err := src.Push(ctx, id, rb, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	dst := newEngineAt(t, root, func(o *Options) { o.Backends = nil })
	if _, err := dst.Pull(ctx, id.String(), rb); !errors.Is(err, ErrRuntime) || !errors.Is(err, runtime.ErrBackendUnavailable) {
		t.Fatalf("pull without the backend: %v", err)
	}
	if _, err := dst.Inspect(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Errorf("failed pull left a record: %v", err)
	}
	if exists(dst.layout.EnvPath(id)) {
		t.Error("failed pull left an env directory")
	}
	if ents, _ := os.ReadDir(dst.layout.StagingDir()); len(ents) > 1 { // remote's own blob staging may stay for GC
		t.Errorf("staging left: %v", ents)
	}
	checkClean(t, dst)
	dst = newEngineAt(t, root)
	r, err := dst.Pull(ctx, id.String(), rb)
	if err != nil {
		t.Fatal(err)
	}
	if r.ObjectsPulled != 0 || r.LayersPulled != 0 {
		t.Errorf("retry downloaded again: %+v", r)
	}
	if !exists(filepath.Join(dst.layout.UpperDir(id), ".pkg-git")) {
		t.Error("retry did not materialize")
	}
	checkClean(t, dst)
}

// treeText lists a directory tree (path, type, size, content of small files) for
// comparisons.
func treeText(t testing.TB, dir string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "%s %s", rel, fi.Mode())
		if fi.Mode().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(&b, " %q", c)
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
