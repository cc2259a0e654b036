package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/karapace/karapace/schema"
)

// The reserved WAL entry lets the operations that free space (destroy, GC) log their
// entry on a file system with no byte left. <root>/store/wal.reserve is a file of
// ReserveSize zero bytes, written in full (no holes) while there was space. Such an
// operation's Begin
//
//	renames wal.reserve to wal.reserve.<op id> (a claim: only one caller gets it),
//	writes its entry over the first bytes, pads the rest with spaces, fsyncs,
//	renames the claim to wal/<op id>.json and fsyncs both directories;
//
// and its Commit renames the entry back to wal.reserve. Overwriting allocated bytes
// and renaming need no new blocks (on tmpfs, ext4 and xfs; a copy-on-write file system
// may still need some), so the entry is as durable and atomic as any other: it
// appears complete, by a rename, or not at all. The original reads such an entry (JSON
// allows trailing white space) and ignores wal.reserve, which is outside wal/.
//
// A crash leaves the reserve under one of three names, and Recover makes each the
// reserve again without writing: a claim is renamed back, an entry is renamed back
// once it is rolled back, and wal.reserve is the reserve.

// ReserveSize is the size of the reserved WAL entry: room for a destroy's entry with
// two paths of PATH_MAX bytes.
const ReserveSize = 16 << 10

const reserveName = "wal.reserve"

func (w *WAL) reservePath() string { return filepath.Join(filepath.Dir(w.dir), reserveName) }

// freesSpace reports whether operations of kind log their entry in the reserve.
func freesSpace(kind OpKind) bool { return kind == OpDestroy || kind == OpGC }

// ensureReserve makes sure wal.reserve exists at full size: it is there, or a claim
// left by a crash is renamed back, or it is written afresh (which fails on a full
// disk). Callers hold w.mu.
func (w *WAL) ensureReserve() error {
	ok, err := w.reclaim()
	if ok || err != nil {
		return err
	}
	return writeFileAtomic(w.reservePath(), make([]byte, ReserveSize))
}

// reclaim reports whether wal.reserve is there at full size, renaming a claim left by
// a crash back to it first if need be (other claims are removed). It writes nothing.
// Callers hold w.mu.
func (w *WAL) reclaim() (bool, error) {
	p := w.reservePath()
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() >= ReserveSize {
		return true, nil
	}
	des, err := os.ReadDir(filepath.Dir(p))
	if err != nil {
		return false, err
	}
	found := false
	for _, de := range des {
		if !strings.HasPrefix(de.Name(), reserveName+".") {
			continue
		}
		claim := filepath.Join(filepath.Dir(p), de.Name())
		if fi, err := de.Info(); !found && err == nil && fi.Mode().IsRegular() && fi.Size() >= ReserveSize {
			if err := os.Rename(claim, p); err == nil {
				found = true
				continue
			}
		}
		_ = os.Remove(claim)
	}
	if found {
		return true, syncDir(filepath.Dir(p))
	}
	return false, nil
}

// beginReserved writes op into the reserve (see above). It fails, leaving the reserve
// as it was, when there is none or op does not fit.
func (w *WAL) beginReserved(op Op) error {
	if err := w.ensureReserve(); err != nil {
		return err
	}
	b, err := schema.MarshalPretty(op)
	if err != nil {
		return err
	}
	p := w.reservePath()
	claim := p + "." + op.OpID
	if err := os.Rename(p, claim); err != nil {
		return err
	}
	if err := fillReserved(claim, b); err != nil {
		_ = os.Rename(claim, p)
		return err
	}
	if err := os.Rename(claim, w.path(op.OpID)); err != nil {
		_ = os.Rename(claim, p)
		return err
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	return syncDir(filepath.Dir(p))
}

// fillReserved overwrites the file at p, keeping its size, with b padded by spaces,
// and fsyncs it.
func fillReserved(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if int64(len(b)) > fi.Size() {
		return fmt.Errorf("wal entry of %d bytes does not fit the %d-byte reserve", len(b), fi.Size())
	}
	buf := bytes.Repeat([]byte{' '}, int(fi.Size()))
	copy(buf, b)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	return f.Close()
}

// retire removes a finished entry, or, when it is the size of the reserve and there is
// no reserve, renames it back to wal.reserve. Callers hold w.mu.
func (w *WAL) retire(opID string) error {
	p := w.path(opID)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && fi.Mode().IsRegular() && fi.Size() >= ReserveSize {
		if _, err := os.Lstat(w.reservePath()); errors.Is(err, fs.ErrNotExist) {
			if err := os.Rename(p, w.reservePath()); err == nil {
				return syncDir(filepath.Dir(w.reservePath()))
			}
		}
	}
	return os.Remove(p)
}
