package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/karapace/karapace/schema"
)

// FormatVersion is the store format this package reads and writes.
const FormatVersion = 2

// Layout names every path of a store rooted at Root. Building one does no I/O. Paths
// keyed by an id take a parsed schema.Digest, so nothing built from user input can name
// a file outside the store.
type Layout struct {
	root string
	// remove, when set, removes a tree the caller could not (RemoveTree).
	remove func(path string) error
}

// WithRemover returns the layout with a fallback for RemoveTree: a tree holding files
// of the caller's subordinate ids (package scripts gave them to system users inside an
// environment) can only be removed as root of a user namespace with the caller's id
// map, which the runtime knows how to make (namespace.RemoveTree).
func (l Layout) WithRemover(remove func(path string) error) Layout {
	l.remove = remove
	return l
}

// RemoveTree removes path like the package's RemoveTree, then, if permission was
// refused and the layout has a remover, with it.
func (l Layout) RemoveTree(path string) error {
	err := RemoveTree(path)
	if err != nil && errors.Is(err, fs.ErrPermission) && l.remove != nil {
		return l.remove(path)
	}
	return err
}

// NewLayout returns the layout of the store at root, made absolute (WAL steps hold
// absolute paths and are checked against it).
func NewLayout(root string) Layout {
	if abs, err := filepath.Abs(root); err == nil {
		return Layout{root: abs}
	}
	return Layout{root: filepath.Clean(root)}
}

// Root is the store root (the directory holding store/ and env/).
func (l Layout) Root() string { return l.root }

// StoreDir is <root>/store.
func (l Layout) StoreDir() string { return filepath.Join(l.root, "store") }

// ObjectsDir is <root>/store/objects.
func (l Layout) ObjectsDir() string { return filepath.Join(l.root, "store", "objects") }

// LayersDir is <root>/store/layers.
func (l Layout) LayersDir() string { return filepath.Join(l.root, "store", "layers") }

// MetadataDir is <root>/store/metadata.
func (l Layout) MetadataDir() string { return filepath.Join(l.root, "store", "metadata") }

// StagingDir is <root>/store/staging.
func (l Layout) StagingDir() string { return filepath.Join(l.root, "store", "staging") }

// WALDir is <root>/store/wal.
func (l Layout) WALDir() string { return filepath.Join(l.root, "store", "wal") }

// VersionFile is <root>/store/version.
func (l Layout) VersionFile() string { return filepath.Join(l.root, "store", "version") }

// LockFile is <root>/store/.lock, the flock(2) target shared with the original.
func (l Layout) LockFile() string { return filepath.Join(l.root, "store", ".lock") }

// EnvDir is <root>/env.
func (l Layout) EnvDir() string { return filepath.Join(l.root, "env") }

// EnvPath is <root>/env/<id>.
func (l Layout) EnvPath(id schema.EnvID) string { return filepath.Join(l.root, "env", id.String()) }

// OverlayDir is <root>/env/<id>/overlay.
func (l Layout) OverlayDir(id schema.EnvID) string { return filepath.Join(l.EnvPath(id), "overlay") }

// UpperDir is <root>/env/<id>/upper, the overlay upper layer.
func (l Layout) UpperDir(id schema.EnvID) string { return filepath.Join(l.EnvPath(id), "upper") }

// LowerDir is <root>/env/<id>/lower.
func (l Layout) LowerDir(id schema.EnvID) string { return filepath.Join(l.EnvPath(id), "lower") }

// RunningMarker is <root>/env/<id>/.running, holding the pid of a running environment.
func (l Layout) RunningMarker(id schema.EnvID) string {
	return filepath.Join(l.EnvPath(id), ".running")
}

// versionFile is the JSON of store/version.
type versionFile struct {
	FormatVersion uint32 `json:"format_version"`
}

// dirPerm is the mode of the directories the store creates. A store holds the files of
// environments, set-id ones among them (a `chmod 4755` inside an environment, a pulled
// or restored layer), so nobody but its owner may reach them.
const dirPerm = 0o700

// mkdir creates dir, a directory inside the store, and its missing parents up to the
// root, all 0700. Parents above the root that are missing are created 0755, as
// `mkdir -p` would: they are not the store's.
func (l Layout) mkdir(dir string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(l.root), 0o755); err != nil {
		return err
	}
	if err := os.Mkdir(l.root, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.MkdirAll(dir, dirPerm)
}

// Initialize creates the store directories (0700) and the version file, or checks the
// version of an existing store, and makes the store private (Tighten). It is idempotent.
// Only writers call it.
func (l Layout) Initialize(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, d := range []string{l.ObjectsDir(), l.LayersDir(), l.MetadataDir(), l.EnvDir(), l.StagingDir()} {
		if err := l.mkdir(d); err != nil {
			return wrap("initialize store", err)
		}
	}
	if err := l.Tighten(ctx); err != nil {
		return err
	}
	if _, err := os.Lstat(l.VersionFile()); err == nil {
		return l.VerifyVersion()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return wrap("initialize store", err)
	}
	return l.writeVersion()
}

// Tighten makes an existing store private, as a store of this version is created: it
// takes group and other permissions off the root (whatever directory it is, followed if
// it is a symlink), env/, every directory in env/ (env/<id>, its aside copies, .refs)
// and store/staging. Nothing above the root is touched, nor anything a symlink inside
// the store points at. A directory that is already private costs one lstat. Writers
// call it (Initialize, and the engine whenever it takes the exclusive lock); readers
// never change a mode.
//
// env/<id>/upper keeps its mode: it is the root directory of the environment's overlay,
// whose mode every process inside sees as that of "/" (0700 would lock out the
// environment's own non-root users). It is private through env/<id>.
func (l Layout) Tighten(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := makePrivate(l.root, os.Stat); err != nil {
		return err
	}
	dirs := []string{l.StagingDir(), l.EnvDir()}
	ents, err := os.ReadDir(l.EnvDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return wrap("make the store private", err)
	}
	for _, ent := range ents {
		if ent.IsDir() { // ReadDir does not follow symlinks
			dirs = append(dirs, filepath.Join(l.EnvDir(), ent.Name()))
		}
	}
	for _, d := range dirs {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := makePrivate(d, os.Lstat); err != nil {
			return err
		}
	}
	return nil
}

// makePrivate takes group and other permissions off the directory p (stat with stat),
// keeping the owner's bits and the special ones. A missing path or anything but a
// directory is left alone.
func makePrivate(p string, stat func(string) (fs.FileInfo, error)) error {
	fi, err := stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return wrap("make the store private", err)
	}
	if !fi.IsDir() || fi.Mode().Perm()&0o077 == 0 {
		return nil
	}
	mode := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky) &^ 0o077
	return wrap("make the store private", os.Chmod(p, mode))
}

func (l Layout) writeVersion() error {
	b, err := schema.MarshalPretty(versionFile{FormatVersion: FormatVersion})
	if err != nil {
		return wrap("write version file", err)
	}
	return wrap("write version file", writeFileAtomic(l.VersionFile(), b))
}

// VerifyVersion reads the version file and fails with a *VersionMismatchError
// (ErrVersionMismatch) unless it says FormatVersion.
func (l Layout) VerifyVersion() error {
	b, err := os.ReadFile(l.VersionFile())
	if err != nil {
		return wrap("read version file", err)
	}
	var v struct {
		FormatVersion *uint32 `json:"format_version"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return wrap("read version file", fmt.Errorf("%w: %s: %v", ErrCorrupt, l.VersionFile(), err))
	}
	if v.FormatVersion == nil {
		return wrap("read version file", fmt.Errorf("%w: %s: missing format_version", ErrCorrupt, l.VersionFile()))
	}
	if *v.FormatVersion != FormatVersion {
		return &VersionMismatchError{Expected: FormatVersion, Found: uint64(*v.FormatVersion)}
	}
	return nil
}

// ParseID parses a 64-hex id or hash given by a caller; the error matches ErrInvalidID.
func ParseID(s string) (schema.Digest, error) {
	d, err := schema.ParseDigest(s)
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrInvalidID, err)
	}
	return d, nil
}
