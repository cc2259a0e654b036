package store_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// smallTmpfs mounts a 1 MiB tmpfs in a temp dir (root only) and unmounts it at cleanup.
func smallTmpfs(t *testing.T) string {
	t.Helper()
	requireReal(t, os.Geteuid() == 0, "mounting a tmpfs needs root")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "size=1m,mode=0755"); err != nil {
		requireReal(t, false, "tmpfs mount failed: "+err.Error())
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			_ = unix.Unmount(dir, unix.MNT_DETACH)
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// fill writes a filler file until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			return p
		}
	}
}

func TestENOSPCFailsCleanly(t *testing.T) {
	ctx := context.Background()
	root := smallTmpfs(t)
	s, err := store.Open(ctx, root, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	m := sampleMeta("env")
	m.ManifestHash, m.BaseLayer, m.DependencyLayers = schema.Digest{}, schema.Digest{}, nil // Verify checks references
	if err := s.Envs.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	small, err := s.Objects.PutBytes(ctx, []byte("fits"))
	if err != nil {
		t.Fatal(err)
	}

	// An object larger than the file system.
	_, err = s.Objects.Put(ctx, bytes.NewReader(make([]byte, 2<<20)))
	if !errors.Is(err, syscall.ENOSPC) || !errors.Is(err, store.ErrStore) {
		t.Fatalf("oversized Put = %v, want ENOSPC", err)
	}
	if ds, _ := s.Objects.List(ctx); len(ds) != 1 || ds[0] != small {
		t.Fatalf("objects after failed put: %v", ds)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("failed put left %v", tmp)
	}

	// A full disk: metadata, layer and WAL writes fail and leave the old state.
	filler := fill(t, root)
	m2 := m
	m2.State = store.StateBuilt
	m2.Name = strings.Repeat("n", 64)
	m2.DependencyLayers = make([]schema.Digest, 200)
	if err := s.Envs.Put(ctx, m2); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("metadata Put on a full disk = %v", err)
	}
	if got, err := s.Envs.Get(ctx, m.EnvID); err != nil || got.State != store.StateDefined {
		t.Fatalf("old metadata damaged: %+v %v", got, err)
	}
	big := store.Layer{Hash: small, Kind: store.KindBase, ObjectRefs: make([]schema.Digest, 300), ReadOnly: true}
	if _, err := s.Layers.Put(ctx, big); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("layer Put on a full disk = %v", err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 0 {
		t.Fatalf("failed writes left %v", tmp)
	}

	// Space back: the store verifies clean.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

func TestMigrateLeavesVersionOnWriteFailure(t *testing.T) {
	ctx := context.Background()
	root := smallTmpfs(t)
	src, _ := v1Store(t, "a", "b")
	for _, rel := range []string{"store/version", "store/metadata/" + schema.SumString("a").String(), "store/metadata/" + schema.SumString("b").String()} {
		b, err := os.ReadFile(filepath.Join(src, rel))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, rel), string(b), 0o644)
	}
	filler := fill(t, root)
	if _, err := store.Migrate(ctx, root, nil, nil); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Migrate on a full disk = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "store", "version")); !strings.Contains(string(b), `"format_version": 1`) {
		t.Fatalf("version changed by a failed migration: %q", b)
	}
	_ = os.Remove(filler)
	if res, err := store.Migrate(ctx, root, nil, nil); err != nil || res.EnvironmentsMigrated != 2 {
		t.Fatalf("retry: %+v %v", res, err)
	}
}
