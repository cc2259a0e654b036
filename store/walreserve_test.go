package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func reserveSize(t *testing.T, l store.Layout) int64 {
	t.Helper()
	fi, err := os.Lstat(filepath.Join(l.StoreDir(), "wal.reserve"))
	if errors.Is(err, os.ErrNotExist) {
		return -1
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func freeSpace(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// A destroy's or GC's entry is written into the reserve and goes back to being the
// reserve at commit; other entries leave the reserve in place.
func TestWALReservedEntry(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	op, err := w.Begin(ctx, store.OpBuild, "e")
	if err != nil {
		t.Fatal(err)
	}
	if got := reserveSize(t, l); got != store.ReserveSize {
		t.Fatalf("reserve after a build's Begin: %d bytes", got)
	}
	if err := w.Commit(ctx, op); err != nil {
		t.Fatal(err)
	}
	id := schema.SumString("victim")
	steps := []store.Step{store.RemoveFileStep(filepath.Join(l.MetadataDir(), id.String())), store.RemoveDirStep(l.EnvPath(id))}
	op, err = w.Begin(ctx, store.OpDestroy, id.String(), steps...)
	if err != nil {
		t.Fatal(err)
	}
	if got := reserveSize(t, l); got != -1 {
		t.Fatalf("reserve still there while its entry is open (%d bytes)", got)
	}
	b, err := os.ReadFile(filepath.Join(l.WALDir(), op+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != store.ReserveSize || !json.Valid(b) {
		t.Fatalf("reserved entry: %d bytes, valid JSON %v", len(b), json.Valid(b))
	}
	dec, err := store.DecodeOp(b)
	if err != nil || dec.OpID != op || dec.Kind != store.OpDestroy || len(dec.RollbackSteps) != 2 || dec.RollbackSteps[1].Path != l.EnvPath(id) {
		t.Fatalf("decode reserved entry: %+v %v", dec, err)
	}
	if ops, bad, err := w.ListIncomplete(ctx); err != nil || len(bad) != 0 || len(ops) != 1 {
		t.Fatalf("list: %v %v %v", ops, bad, err)
	}
	if err := w.Commit(ctx, op); err != nil {
		t.Fatal(err)
	}
	if got := reserveSize(t, l); got != store.ReserveSize {
		t.Fatalf("reserve after commit: %d bytes", got)
	}
	if e := walEntries(t, l); len(e) != 0 {
		t.Fatalf("WAL after commit: %v", e)
	}
}

// Steps are checked before anything is written, and a refused Begin leaves nothing.
func TestWALBeginRefusesBadStepsAtomically(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	op, err := w.Begin(ctx, store.OpDestroy, "e", store.RemoveDirStep(l.Root()+"/x"), store.RemoveDirStep("/etc"))
	if err == nil || op != "" || !errors.Is(err, store.ErrUnsafePath) {
		t.Fatalf("Begin with a step outside the store = %q, %v", op, err)
	}
	if e := walEntries(t, l); len(e) != 0 {
		t.Fatalf("refused Begin left %v", e)
	}
}

// On a file system with no byte left, destroy and GC entries still begin, roll forward
// and commit, the reserve comes back after a crash, and no other entry begins.
func TestWALReserveOnFullDisk(t *testing.T) {
	ctx := context.Background()
	root := smallTmpfs(t)
	s, err := store.Open(ctx, root, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	op, err := s.WAL.Begin(ctx, store.OpBuild, "first")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.WAL.Commit(ctx, op); err != nil {
		t.Fatal(err)
	}
	id := schema.SumString("victim")
	victim := s.Layout.EnvPath(id)
	if err := os.MkdirAll(filepath.Join(victim, "upper"), 0o700); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, root)
	free := freeSpace(t, root)

	if op, err := s.WAL.Begin(ctx, store.OpBuild, "e"); !errors.Is(err, syscall.ENOSPC) || op != "" {
		t.Fatalf("build Begin on a full disk = %q, %v", op, err)
	}
	if e := walEntries(t, s.Layout); len(e) != 0 {
		t.Fatalf("failed Begin left %v", e)
	}

	// A destroy begins, and its process dies: recovery rolls it forward and the entry
	// becomes the reserve again.
	// (The entry's id is not kept: the process that began it is taken as dead.)
	if _, err := s.WAL.Begin(ctx, store.OpDestroy, id.String(), store.RemoveDirStep(victim)); err != nil {
		t.Fatalf("destroy Begin on a full disk: %v", err)
	}
	s2, err := store.Open(ctx, root, store.Options{}) // another process: no memory of op
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s2.WAL.Recover(ctx)
	if err != nil || len(rec.RolledBack) != 1 || len(rec.Failed) != 0 {
		t.Fatalf("recover: %+v %v", rec, err)
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("destroy not rolled forward: %v", err)
	}
	if got := reserveSize(t, s.Layout); got != store.ReserveSize {
		t.Fatalf("reserve after recovery: %d", got)
	}

	// A claim left by a crash inside Begin is taken back.
	claim := filepath.Join(s.Layout.StoreDir(), "wal.reserve.20250101120000123-ad487491-00000000")
	if err := os.Rename(filepath.Join(s.Layout.StoreDir(), "wal.reserve"), claim); err != nil {
		t.Fatal(err)
	}
	op, err = s2.WAL.Begin(ctx, store.OpGC, "gc")
	if err != nil {
		t.Fatalf("gc Begin on a full disk after a cut-short claim: %v", err)
	}
	if err := s2.WAL.Commit(ctx, op); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(claim); !errors.Is(err, os.ErrNotExist) || reserveSize(t, s.Layout) != store.ReserveSize {
		t.Fatalf("claim %v, reserve %d", err, reserveSize(t, s.Layout))
	}
	if e := walEntries(t, s.Layout); len(e) != 0 {
		t.Fatalf("WAL: %v", e)
	}
	// Not a byte was needed, and the destroyed directory's pages are back.
	if got := freeSpace(t, root); got < free {
		t.Fatalf("free space went from %d to %d", free, got)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
}
