package cli

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// fullDiskWorld is a world whose store lives on a small tmpfs of its own (root only),
// unmounted when the test ends.
func fullDiskWorld(t *testing.T, size string) *world {
	t.Helper()
	w := newWorld(t)
	// Cleanups run last registered first: the unmount comes before newWorld's release
	// of keepers, which the mock backend never starts.
	mnt := testrootfs.Tmpfs(t, size)
	w.store = filepath.Join(mnt, "store")
	for i, kv := range w.env {
		if strings.HasPrefix(kv, "KARAPACE_STORE=") {
			w.env[i] = "KARAPACE_STORE=" + w.store
		}
	}
	return w
}

// ballast fills the file system of dir to the last byte and returns the file's path.
func ballast(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "ballast")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4096, 512, 1} {
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
	return p
}

func freeBytes(t *testing.T, dir string) uint64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Bavail * uint64(st.Bsize)
}

// treeState lists every path below root with its kind, size and modification time.
func treeState(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.Name() == ".lock.holder":
			// The lock's note of its holder, gone when the lock is released.
		case d.Name() == ".settled":
			// The recovery stamp (core/recovery.go), a cache: spoiled in place, so
			// its time changes, by every lock holder; its size does not.
			lines = append(lines, fmt.Sprintf("%s %v %d", p, fi.Mode(), fi.Size()))
		case d.IsDir():
			// A directory's time changes when a temp file is made and removed in it.
			lines = append(lines, fmt.Sprintf("%s %v", p, fi.Mode()))
		default:
			lines = append(lines, fmt.Sprintf("%s %v %d %d", p, fi.Mode(), fi.Size(), fi.ModTime().UnixNano()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestCLIFullDisk: on a file system filled to the last byte, destroy and gc give the
// space back, gc --dry-run writes nothing, and every other command fails with exit 3
// and a message saying what to do, losing nothing.
func TestCLIFullDisk(t *testing.T) {
	w := fullDiskWorld(t, "16m")
	mnt := filepath.Dir(w.store)
	var ids []string
	for i, pkgs := range [][]string{{"git"}, {"curl"}, {"vim", "make"}} {
		dir := fmt.Sprintf("p%d", i)
		ids = append(ids, w.buildNamed(w.manifest(dir+"/karapace.toml", "ubuntu/24.04", pkgs...), dir))
	}
	// Data worth freeing: a file in one environment and a snapshot holding it.
	big := bytes.Repeat([]byte("karapace"), 256<<10) // 2 MiB
	if err := os.WriteFile(filepath.Join(w.store, "env", ids[0], "upper", "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	var commit commitResult
	w.jsonOK(&commit, "commit", "p0")
	w.ok("verify-store")

	ballast(t, mnt)
	if free := freeBytes(t, mnt); free != 0 {
		t.Fatalf("ballast left %d bytes free", free)
	}
	before := treeState(t, w.store)

	// Commands that need new bytes fail clearly, exit 3, and change nothing.
	want := []string{"no space left on device", "karapace destroy", "gc"}
	w.fail(3, want, "build", w.manifest("new/karapace.toml", "ubuntu/24.04", "htop"), "--name", "new")
	w.fail(3, want, "restore", "p0", commit.SnapshotHash)
	w.fail(3, want, "commit", "p1")
	w.fail(3, want, "freeze", "p1")
	w.fail(3, want, "rename", "p1", "other")
	if after := treeState(t, w.store); after != before {
		t.Fatalf("failed commands changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// A dry run reports and writes nothing at all.
	var dry core.GCReport
	w.jsonOK(&dry, "gc", "--dry-run")
	if after := treeState(t, w.store); after != before {
		t.Fatalf("gc --dry-run changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	// destroy and gc work and give the space back.
	for _, id := range ids {
		w.ok("destroy", id)
	}
	if ents, err := os.ReadDir(filepath.Join(w.store, "store", "wal")); err != nil || len(ents) != 0 {
		t.Fatalf("WAL after destroys: %v %v", ents, err)
	}
	var gc core.GCReport
	w.jsonOK(&gc, "gc")
	if gc.RemovedObjects == 0 || gc.RemovedLayers == 0 {
		t.Fatalf("gc removed nothing: %+v", gc)
	}
	if free := freeBytes(t, mnt); free < uint64(2*len(big)) {
		t.Fatalf("only %d bytes free after destroy and gc", free)
	}
	w.ok("verify-store")
	var envs []map[string]any
	w.jsonOK(&envs, "list")
	if len(envs) != 0 {
		t.Fatalf("environments left: %v", envs)
	}
	ents, _ := os.ReadDir(filepath.Join(w.store, "store", "objects"))
	if len(ents) != 0 {
		t.Fatalf("objects left after gc: %v", ents)
	}
	// With space back, building works again.
	w.buildNamed(w.manifest("again/karapace.toml", "ubuntu/24.04", "git"), "again")
	w.ok("verify-store")
}
