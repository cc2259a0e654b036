package core

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
)

func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiffTrees(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	upper, lower := filepath.Join(dir, "upper"), filepath.Join(dir, "lower")
	writeFiles(t, lower, map[string]string{
		"etc/hosts": "x", "etc/passwd": "x", "usr/bin/tool": "x", "opt/a": "x", "opt/b": "x",
	})
	writeFiles(t, upper, map[string]string{
		"etc/hosts":        "changed",
		"new.txt":          "new",
		"deep/dir/file":    "new",
		"usr/bin/.wh.tool": "",
		"opt/b":            "kept",
		"opt/.wh..wh..opq": "",
	})
	// A kernel overlayfs whiteout: character device 0/0.
	if err := syscall.Mknod(filepath.Join(upper, "etc", "passwd"), syscall.S_IFCHR|0o600, 0); err != nil {
		t.Skipf("mknod (needs CAP_MKNOD): %v", err)
	}
	// A symlink pointing out of upper is a file, never followed.
	if err := os.Symlink("/etc", filepath.Join(upper, "escape")); err != nil {
		t.Fatal(err)
	}
	added, modified, removed, err := diffTrees(ctx, upper, lower)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"deep/dir/file", "escape", "new.txt"}; !reflect.DeepEqual(added, want) {
		t.Errorf("added %q, want %q", added, want)
	}
	if want := []string{"etc/hosts", "opt/b"}; !reflect.DeepEqual(modified, want) {
		t.Errorf("modified %q, want %q", modified, want)
	}
	if want := []string{"etc/passwd", "opt/a", "usr/bin/tool"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("removed %q, want %q", removed, want)
	}
}

func TestDiffTreesEmpty(t *testing.T) {
	dir := t.TempDir()
	a, m, r, err := diffTrees(context.Background(), filepath.Join(dir, "none"), filepath.Join(dir, "lower"))
	if err != nil || len(a)+len(m)+len(r) != 0 || a == nil || m == nil || r == nil {
		t.Errorf("missing upper: %q %q %q %v (want empty non-nil lists)", a, m, r, err)
	}
	if err := os.Mkdir(filepath.Join(dir, "upper"), 0o755); err != nil {
		t.Fatal(err)
	}
	a, m, r, err = diffTrees(context.Background(), filepath.Join(dir, "upper"), filepath.Join(dir, "lower"))
	if err != nil || len(a)+len(m)+len(r) != 0 {
		t.Errorf("empty upper: %q %q %q %v", a, m, r, err)
	}
}

func TestDiffTreesLowerSymlinkEscape(t *testing.T) {
	// A lower tree whose symlink points outside it must not make host files look
	// present: /etc/hostname exists on the host, not in lower.
	dir := t.TempDir()
	upper, lower := filepath.Join(dir, "upper"), filepath.Join(dir, "lower")
	writeFiles(t, upper, map[string]string{"host/hostname": "x"})
	if err := os.MkdirAll(lower, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(lower, "host")); err != nil {
		t.Fatal(err)
	}
	added, modified, _, err := diffTrees(context.Background(), upper, lower)
	if err != nil {
		t.Fatal(err)
	}
	if len(modified) != 0 || !reflect.DeepEqual(added, []string{"host/hostname"}) {
		t.Errorf("added %q modified %q", added, modified)
	}
}
