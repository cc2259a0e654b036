package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Overlay whiteouts come in three forms, all reported as removals:
//   - a character device 0/0 (kernel overlayfs, also with userxattr);
//   - a file named ".wh.<name>" (the OCI/AUFS convention, fuse-overlayfs);
//   - an opaque directory: the xattr trusted.overlay.opaque or user.overlay.opaque set to
//     "y", or a ".wh..wh..opq" file inside it. Everything the lower layer had in that
//     directory and the upper layer does not is removed.
const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// diffTrees compares an overlay upper directory with its lower directory. It never
// follows a symlink: the upper walk uses lstat, and lookups in the lower tree go through
// an os.Root, which refuses to resolve a path outside lower. A missing upper gives no
// drift; a missing lower makes every file "added".
func diffTrees(ctx context.Context, upper, lower string) (added, modified, removed []string, err error) {
	added, modified, removed = []string{}, []string{}, []string{}
	if _, err := os.Lstat(upper); errors.Is(err, fs.ErrNotExist) {
		return added, modified, removed, nil
	}
	low := openLower(lower)
	if low != nil {
		defer low.Close()
	}
	inLower := func(rel string) bool { return hasPath(low, rel) }
	err = filepath.WalkDir(upper, func(p string, d fs.DirEntry, werr error) error {
		if werr != nil {
			return werr
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == upper {
			if isOpaque(p) {
				removed = append(removed, lowerOnly(low, ".", upper)...)
			}
			return nil
		}
		r, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(r)
		name := d.Name()
		switch {
		case name == opaqueMarker:
			return nil // handled with its directory
		case strings.HasPrefix(name, whiteoutPrefix):
			removed = append(removed, path.Join(path.Dir(rel), strings.TrimPrefix(name, whiteoutPrefix)))
			return nil
		case d.IsDir():
			if isOpaque(p) {
				removed = append(removed, lowerOnly(low, rel, p)...)
			}
			return nil
		case d.Type()&fs.ModeCharDevice != 0 && isWhiteoutDevice(p):
			removed = append(removed, rel)
			return nil
		case inLower(rel):
			modified = append(modified, rel)
		default:
			added = append(added, rel)
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("diff %s: %w", upper, err)
	}
	sort.Strings(added)
	sort.Strings(modified)
	sort.Strings(removed)
	removed = dedup(removed)
	return added, modified, removed, nil
}

// openLower opens an environment's lower tree for lookups that cannot leave it; a
// missing lower gives nil, which has nothing.
func openLower(dir string) *os.Root {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil
	}
	return r
}

// hasPath reports whether the lower tree has rel (not following a final symlink).
func hasPath(low *os.Root, rel string) bool {
	if low == nil {
		return false
	}
	_, err := low.Lstat(filepath.FromSlash(rel))
	return err == nil
}

// isWhiteoutDevice reports whether p is a character device with device number 0/0.
func isWhiteoutDevice(p string) bool {
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		return false
	}
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
}

// isOpaque reports whether the upper directory dir hides the lower one entirely.
func isOpaque(dir string) bool {
	if _, err := os.Lstat(filepath.Join(dir, opaqueMarker)); err == nil {
		return true
	}
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		n, err := syscall.Getxattr(dir, attr, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

// lowerOnly lists the entries of the lower directory rel that the upper directory
// upperDir does not have: what an opaque upper directory removes.
func lowerOnly(low *os.Root, rel, upperDir string) []string {
	var out []string
	for _, n := range lowerNames(low, rel) {
		if _, err := os.Lstat(filepath.Join(upperDir, n)); errors.Is(err, fs.ErrNotExist) {
			out = append(out, path.Join(rel, n))
		}
	}
	return out
}

// lowerNames lists the lower directory rel (nothing when there is none).
func lowerNames(low *os.Root, rel string) []string {
	if low == nil {
		return nil
	}
	f, err := low.Open(filepath.FromSlash(rel))
	if err != nil {
		return nil
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil
	}
	return names
}

func dedup(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
