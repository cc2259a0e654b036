package store

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// tempPrefix starts the name of every temp file, as in the original (tempfile's
// ".tmpXXXXXX"): listings skip dot files, and GC removes old ones.
const tempPrefix = ".tmp"

// filePerm is the mode of every file the store writes (the original used 0600).
const filePerm = 0o644

const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// createTemp creates an empty temp file in dir, named .tmp plus six random letters or
// digits, with O_EXCL.
func createTemp(dir string) (*os.File, error) {
	for range 100 {
		var b strings.Builder
		b.WriteString(tempPrefix)
		for range 6 {
			b.WriteByte(alnum[rand.IntN(len(alnum))])
		}
		f, err := os.OpenFile(filepath.Join(dir, b.String()), os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		// The umask may have narrowed the mode; store files are 0644 whatever it is.
		if err := f.Chmod(filePerm); err != nil {
			discardTemp(f)
			return nil, err
		}
		return f, nil
	}
	return nil, fmt.Errorf("create temp file in %s: too many name collisions", dir)
}

// discardTemp closes and removes a temp file after a failure.
func discardTemp(f *os.File) {
	_ = f.Close()
	_ = os.Remove(f.Name())
}

// commitTemp makes a fully written temp file durable under its final name: fsync the
// file, close it, rename it over final, fsync the directory. On any error the temp file
// is removed and final is left as it was (or, after a successful rename whose directory
// fsync failed, holds the new content).
func commitTemp(f *os.File, final string) error {
	if err := f.Sync(); err != nil {
		discardTemp(f)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), final); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return syncDir(filepath.Dir(final))
}

// syncDir fsyncs a directory so that a rename or unlink in it is durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeFileAtomic replaces path with data: temp file in the same directory, write,
// fsync, rename, fsync the directory. Readers see the old content or the new, never a
// mix, and a crash leaves at most a .tmp file behind.
func writeFileAtomic(path string, data []byte) error {
	f, err := createTemp(filepath.Dir(path))
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		discardTemp(f)
		return err
	}
	return commitTemp(f, path)
}

// isTempName reports whether a directory entry is a temp file of an atomic write.
func isTempName(name string) bool { return strings.HasPrefix(name, tempPrefix) }
