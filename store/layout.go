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

// Initialize creates the store directories and the version file, or checks the version
// of an existing store. It is idempotent.
func (l Layout) Initialize(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, d := range []string{l.ObjectsDir(), l.LayersDir(), l.MetadataDir(), l.EnvDir(), l.StagingDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return wrap("initialize store", err)
		}
	}
	if _, err := os.Lstat(l.VersionFile()); err == nil {
		return l.VerifyVersion()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return wrap("initialize store", err)
	}
	return l.writeVersion()
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
