package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// fillDisk appends to dir/ballast until the file system has no byte left.
func fillDisk(t testing.TB, dir string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "ballast"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4096, 1} {
		chunk := make([]byte, size)
		for {
			if _, err := f.Write(chunk); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
}

func diskFree(t testing.TB, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// buildFilled builds n environments in e and puts size bytes of data in each upper.
func buildFilled(t *testing.T, e *Engine, n, size int) []schema.EnvID {
	t.Helper()
	var ids []schema.EnvID
	for i := range n {
		dir := filepath.Join(t.TempDir(), fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		id := build(t, e, manifestIn(t, dir, fmt.Sprintf("pkg%d", i)))
		if err := os.WriteFile(filepath.Join(e.layout.UpperDir(id), "data"), bytes.Repeat([]byte{byte(i)}, size), 0o644); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

// On a full disk, destroy and GC work and give the space back, a dry run writes
// nothing, and the other operations fail with a no-space store error, losing nothing.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	mnt := testrootfs.Tmpfs(t, "8m")
	var logs bytes.Buffer
	e := newEngineAt(t, filepath.Join(mnt, "store"), func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	ids := buildFilled(t, e, 3, 256<<10)
	snap, err := e.Commit(ctx, ids[0])
	if err != nil {
		t.Fatal(err)
	}
	fillDisk(t, mnt)

	isNoSpace := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, ErrStore) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "free space (karapace destroy") {
			t.Errorf("%s on a full disk = %v, want a no-space store error", what, err)
		}
	}
	_, err = e.Build(ctx, manifestIn(t, t.TempDir(), "new"), BuildOptions{})
	isNoSpace("build", err)
	isNoSpace("restore", e.Restore(ctx, ids[0], snap))
	_, err = e.Commit(ctx, ids[1])
	isNoSpace("commit", err)
	isNoSpace("freeze", e.Freeze(ctx, ids[1]))
	if strings.Contains(logs.String(), "drop WAL entry") {
		t.Errorf("a failed Begin handed back an op id:\n%s", logs.String())
	}
	if n := walEntries(t, e.Root()); n != 0 {
		t.Fatalf("%d WAL entries after failed operations", n)
	}
	if envs, err := e.List(ctx); err != nil || len(envs) != 3 {
		t.Fatalf("environments after failed operations: %v %v", envs, err)
	}

	dry, err := e.GC(ctx, true)
	if err != nil || len(dry.OrphanedObjects) != 0 {
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	for _, id := range ids {
		if err := e.Destroy(ctx, id); err != nil {
			t.Fatalf("destroy on a full disk: %v", err)
		}
	}
	rep, err := e.GC(ctx, false)
	if err != nil || rep.RemovedObjects == 0 {
		t.Fatalf("gc on a full disk: %+v %v", rep, err)
	}
	if free := diskFree(t, mnt); free < 3*256<<10 {
		t.Fatalf("%d bytes free after destroy and gc", free)
	}
	checkClean(t, e)
	if fi, err := os.Stat(filepath.Join(e.layout.StoreDir(), "wal.reserve")); err != nil || fi.Size() != store.ReserveSize {
		t.Fatalf("reserved WAL entry after the destroys: %v", err)
	}
}

// TestCrashOnFullDisk kills a child destroying environments and collecting garbage on
// a full file system, again and again, refilling the disk before each: recovery
// leaves a clean store every time, the reserved WAL entry survives, and every
// environment goes in the end, its space back. When all are gone, the disk is
// emptied and they are built again, until the time is up.
func TestCrashOnFullDisk(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests re-execute the test binary")
	}
	mnt := testrootfs.Tmpfs(t, "16m")
	root, proj := filepath.Join(mnt, "store"), t.TempDir()
	ballast := filepath.Join(mnt, "ballast")
	deadline := time.Now().Add(4 * time.Second)
	kills, rounds := 0, 0
	for i := 0; time.Now().Before(deadline); i++ {
		e := newEngineAt(t, root)
		if envs, _ := e.List(context.Background()); len(envs) == 0 {
			if err := os.Remove(ballast); err != nil && !errors.Is(err, os.ErrNotExist) {
				t.Fatal(err)
			}
			buildFilled(t, e, 12, 64<<10)
			rounds++
		}
		fillDisk(t, mnt)
		cmd := startChild(t, "destroy_gc", root, proj, -1)
		time.Sleep(time.Duration(5+i*7%50) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if ws, _ := cmd.ProcessState.Sys().(syscall.WaitStatus); ws.Signaled() {
			kills++
		} else if !cmd.ProcessState.Success() {
			t.Fatalf("child failed on a full disk: %v", cmd.ProcessState)
		}
		e = newEngineAt(t, root)
		checkClean(t, e)
		checkAfterKill(t, e)
		if fi, err := os.Stat(filepath.Join(e.layout.StoreDir(), "wal.reserve")); err != nil || fi.Size() != store.ReserveSize {
			t.Fatalf("after kill %d: reserved WAL entry lost: %v", kills, err)
		}
		if t.Failed() {
			t.FailNow()
		}
	}
	if kills == 0 {
		t.Fatal("no child was killed midway")
	}
	// Whatever is left goes now, on a full disk still.
	fillDisk(t, mnt)
	cmd := startChild(t, "destroy_gc", root, proj, -1)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("final destroy and gc: %v", err)
	}
	e := newEngineAt(t, root)
	checkClean(t, e)
	envs, err := e.List(context.Background())
	if err != nil || len(envs) != 0 {
		t.Fatalf("environments left: %v %v", envs, err)
	}
	if objs, _ := os.ReadDir(e.layout.ObjectsDir()); len(objs) != 0 {
		t.Fatalf("%d objects left", len(objs))
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	if free := diskFree(t, mnt); free < 15<<20 {
		t.Fatalf("only %d bytes free at the end", free)
	}
	t.Logf("%d kills on a full disk, %d rounds of environments", kills, rounds)
}

// checkAfterKill: every environment with metadata still has its writable layer and
// data, and no directory is left without metadata.
func checkAfterKill(t *testing.T, e *Engine) {
	t.Helper()
	envs, err := e.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		if !exists(filepath.Join(e.layout.UpperDir(env.EnvID), "data")) {
			t.Errorf("env %s lost its data", env.ShortID)
		}
	}
	ents, _ := os.ReadDir(e.layout.EnvDir())
	for _, ent := range ents {
		if id, err := schema.ParseEnvID(ent.Name()); err == nil && !exists(e.st.metaPath(id)) {
			t.Errorf("env directory %s without metadata after recovery", ent.Name())
		}
	}
}
