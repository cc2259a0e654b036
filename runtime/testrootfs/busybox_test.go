package testrootfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestBusybox(t *testing.T) {
	root := Busybox(t)
	for _, p := range []string{"bin/busybox", "bin/sh", "etc/passwd", "etc/group", "tmp", "proc", "dev"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
			t.Error(err)
		}
	}
	if target, err := os.Readlink(filepath.Join(root, "bin/sh")); err != nil || target != "/bin/busybox" {
		t.Errorf("bin/sh -> %q, %v", target, err)
	}
	fi, err := os.Stat(filepath.Join(root, "tmp"))
	if err != nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode %v, %v", fi.Mode(), err)
	}
	// A second call reuses the cache.
	if again := Busybox(t); again != root {
		t.Errorf("second call %q, want %q", again, root)
	}
}
