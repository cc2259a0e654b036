package store

import (
	"context"
	"errors"
	"fmt"
)

// ErrStore is the class of every error this package returns: errors.Is(err, ErrStore)
// holds for all of them except context cancellation, which stays context.Canceled or
// context.DeadlineExceeded. The CLI maps ErrStore to exit code 3.
var ErrStore = errors.New("store error")

// Sentinel classes. Each also matches ErrStore.
var (
	// ErrNotFound: no object, layer or environment with that key.
	ErrNotFound = class("not found")
	// ErrIntegrity: content does not match its hash or checksum.
	ErrIntegrity = class("integrity check failed")
	// ErrVersionMismatch: the store's format version is not FormatVersion.
	ErrVersionMismatch = class("store format version mismatch")
	// ErrInvalidID: an id or hash that is not 64 lowercase hex characters.
	ErrInvalidID = class("invalid id")
	// ErrInvalidName: an environment name outside [A-Za-z0-9_-]{1,64}.
	ErrInvalidName = class("invalid environment name")
	// ErrNameConflict: the name belongs to another environment.
	ErrNameConflict = class("name already used")
	// ErrLocked: a non-blocking lock attempt found the store lock held.
	ErrLocked = class("store is locked")
	// ErrCorrupt: a store file that does not parse (JSON, WAL entry, version file).
	ErrCorrupt = class("corrupt store file")
	// ErrUnsafeArchive: a tar archive that tries to escape its target or holds
	// entries we refuse (devices, oversized headers).
	ErrUnsafeArchive = class("unsafe archive")
	// ErrUnsafePath: a path that would leave the store (for example in a WAL step).
	ErrUnsafePath = class("path outside the store")
)

// classError is a sentinel that also matches ErrStore.
type classError struct{ msg string }

func class(msg string) error { return &classError{msg} }

func (e *classError) Error() string        { return e.msg }
func (e *classError) Is(target error) bool { return target == ErrStore }

// Error wraps an underlying error (usually an *fs.PathError) with the store operation
// that failed, and puts it in the ErrStore class.
type Error struct {
	Op  string
	Err error
}

func (e *Error) Error() string        { return e.Op + ": " + e.Err.Error() }
func (e *Error) Unwrap() error        { return e.Err }
func (e *Error) Is(target error) bool { return target == ErrStore }

// wrap adds context to err and makes sure it belongs to the ErrStore class, unless it
// is a context error.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrStore) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return &Error{Op: op, Err: err}
}

// IntegrityError reports content whose hash is not the expected one. It matches
// ErrIntegrity and ErrStore.
type IntegrityError struct {
	What     string // "object", "layer" or "metadata"
	Name     string // the key (file name)
	Expected string
	Actual   string
}

func (e *IntegrityError) Error() string {
	return fmt.Sprintf("integrity check failed for %s '%s': expected %s, got %s", e.What, e.Name, e.Expected, e.Actual)
}

func (e *IntegrityError) Unwrap() error { return ErrIntegrity }

// VersionMismatchError reports a store whose format version is not the supported one.
type VersionMismatchError struct {
	Expected, Found uint64
}

func (e *VersionMismatchError) Error() string {
	return fmt.Sprintf("store format version mismatch: expected %d, found %d", e.Expected, e.Found)
}

func (e *VersionMismatchError) Unwrap() error { return ErrVersionMismatch }

// NameConflictError reports a name already taken by another environment.
type NameConflictError struct {
	Name          string
	ExistingEnvID string // short id of the holder
}

func (e *NameConflictError) Error() string {
	return fmt.Sprintf("name '%s' is already used by environment %s", e.Name, e.ExistingEnvID)
}

func (e *NameConflictError) Unwrap() error { return ErrNameConflict }

// LockedError reports a store lock held by someone else; Holder describes them when
// the holder left a note (see Lock).
type LockedError struct {
	Path   string
	Holder string
}

func (e *LockedError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("store is locked: %s is held by another process", e.Path)
	}
	return fmt.Sprintf("store is locked: %s is held by %s", e.Path, e.Holder)
}

func (e *LockedError) Unwrap() error { return ErrLocked }

// NotFoundError names what was missing: "object not found: <hex>", as the original
// words it. It matches ErrNotFound and ErrStore.
type NotFoundError struct {
	What string // "object", "layer", "environment", "operation"
	Key  string
}

func (e *NotFoundError) Error() string { return e.What + " not found: " + e.Key }

func (e *NotFoundError) Unwrap() error { return ErrNotFound }
