package store

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// RemoveTree deletes path and everything below it, like os.RemoveAll, but also when the
// tree holds read-only directories (0555 and the like are common in root filesystems):
// an unprivileged owner cannot unlink entries of a directory without write permission,
// so on failure it makes every directory below path owner-writable and tries again.
// Symlinks are never followed. A missing path is not an error.
func RemoveTree(path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, fs.ErrPermission) {
		return err
	}
	_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(path)
}
