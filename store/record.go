package store

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// A record (a metadata file or a layer manifest) is a regular file. Anything else in
// metadata/ or layers/ (a symlink, a directory, a device, a FIFO) is corruption: it is
// never followed, opened for reading or taken for the record its name says, and it
// is reported by Verify and stops GC, like a record that does not verify.

// notRegular is the error of a non-regular entry of mode m.
func notRegular(m fs.FileMode) error {
	return fmt.Errorf("%w: not a regular file (%s)", ErrCorrupt, entryKind(m))
}

// entryKind names the type of a directory entry in words.
func entryKind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeSymlink != 0:
		return "symlink"
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	default:
		return "irregular file"
	}
}

// readRecord reads the regular file at p without following a symlink or blocking on
// a FIFO; any other kind of entry is ErrCorrupt.
func readRecord(p string) ([]byte, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, err
		}
		if fi, lerr := os.Lstat(p); lerr == nil && !fi.Mode().IsRegular() {
			return nil, &fs.PathError{Op: "read", Path: p, Err: notRegular(fi.Mode())}
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: p, Err: notRegular(fi.Mode())}
	}
	return io.ReadAll(f)
}
