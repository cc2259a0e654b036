package image

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/karapace/karapace/schema"
)

// TreeDigest hashes an extracted tree: for every entry below dir, in lexical order, a
// record of type, permission bits, relative path and, for a regular file, its size and
// content digest, for a symlink its target. Fields are NUL-terminated (NUL cannot occur
// in a path or link target), so two different trees never share an encoding.
// Modification times and ownership are left out: they say nothing about the content.
func TreeDigest(ctx context.Context, dir string) (schema.Digest, error) {
	h := schema.NewHash()
	w := bufio.NewWriterSize(h, 1<<20)
	field := func(s string) {
		w.WriteString(s)
		w.WriteByte(0)
	}
	buf := make([]byte, 1<<20)
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n%256 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		mode := fi.Mode()
		perm := strconv.FormatUint(uint64(mode.Perm()|setIDBits(mode)), 8)
		switch {
		case mode.IsDir():
			field("d")
			field(perm)
			field(rel)
		case mode.IsRegular():
			sum, size, err := hashFile(p, buf)
			if err != nil {
				return err
			}
			field("f")
			field(perm)
			field(rel)
			field(strconv.FormatInt(size, 10))
			field(sum.String())
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			field("l")
			field(rel)
			field(target)
		default:
			field("o")
			field(perm)
			field(rel)
		}
		return nil
	})
	if err != nil {
		return schema.Digest{}, fmt.Errorf("tree digest of %s: %w", dir, err)
	}
	if err := w.Flush(); err != nil {
		return schema.Digest{}, err
	}
	return h.Digest(), nil
}

func setIDBits(m fs.FileMode) fs.FileMode {
	var bits fs.FileMode
	if m&fs.ModeSetuid != 0 {
		bits |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		bits |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		bits |= 0o1000
	}
	return bits
}

// hashFile hashes one file through buf (1 MiB): the hasher is fast only when fed large
// writes, and a regular file fills the buffer in one read.
func hashFile(p string, buf []byte) (schema.Digest, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return schema.Digest{}, 0, err
	}
	defer f.Close()
	h := schema.NewHash()
	var size int64
	for {
		n, err := f.Read(buf)
		h.Write(buf[:n])
		size += int64(n)
		if err == io.EOF {
			return h.Digest(), size, nil
		}
		if err != nil {
			return schema.Digest{}, 0, err
		}
	}
}
