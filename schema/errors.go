package schema

import (
	"errors"
	"fmt"
)

// Error classes. Every error about a manifest wraps ErrManifest (the CLI maps it to exit
// code 2); every error about a lock file wraps ErrLock. The finer sentinels below say
// which rule failed; inspect them with errors.Is.
var (
	ErrManifest = errors.New("manifest error")
	ErrLock     = errors.New("lock file error")

	// ErrManifestIO: the manifest file could not be read.
	ErrManifestIO = errors.New("failed to read manifest file")
	// ErrManifestSyntax: the manifest is not valid TOML, has a wrong type, an unknown
	// or missing field, or is not text (NUL bytes, invalid UTF-8, too large).
	ErrManifestSyntax = errors.New("failed to parse manifest")
	// ErrUnsupportedVersion: manifest_version is not 1.
	ErrUnsupportedVersion = errors.New("unsupported manifest_version")
	// ErrEmptyBaseImage: base.image is empty after trimming.
	ErrEmptyBaseImage = errors.New("base.image must not be empty")
	// ErrUnpinnedBaseImage: a pinned image (http:// or https://) was required.
	ErrUnpinnedBaseImage = errors.New("base.image is not pinned")
	// ErrEmptyMountLabel: a [mounts] key is empty after trimming.
	ErrEmptyMountLabel = errors.New("mount label must not be empty")
	// ErrInvalidMount: a [mounts] value is not `<host>:<container>`.
	ErrInvalidMount = errors.New("invalid mount declaration")
	// ErrDuplicateMountLabel: two [mounts] keys are equal after trimming.
	ErrDuplicateMountLabel = errors.New("duplicate mount label")
	// ErrInvalidEnv: an [env] name or value is not a valid variable.
	ErrInvalidEnv = errors.New("invalid [env] variable")

	// ErrLockIO: the lock file could not be read or written.
	ErrLockIO = errors.New("lock file I/O error")
	// ErrLockSyntax: the lock file is not a valid v2 lock.
	ErrLockSyntax = errors.New("lock file parse error")
)

// classified is an error whose message is exactly msg and which matches ErrManifest or
// ErrLock, a finer sentinel, and the underlying cause (if any) with errors.Is/As.
type classified struct {
	class error
	kind  error
	msg   string
	cause error
}

func (e *classified) Error() string { return e.msg }

func (e *classified) Unwrap() []error {
	errs := []error{e.class, e.kind}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	return errs
}

func manifestErr(kind error, cause error, format string, args ...any) error {
	return &classified{class: ErrManifest, kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

func lockErr(kind error, cause error, format string, args ...any) error {
	return &classified{class: ErrLock, kind: kind, msg: fmt.Sprintf(format, args...), cause: cause}
}

// syntaxErr builds a manifest parse error: "failed to parse manifest: <detail>".
func syntaxErr(cause error, format string, args ...any) error {
	return manifestErr(ErrManifestSyntax, cause, "failed to parse manifest: "+format, args...)
}

// lockSyntaxErr builds a lock parse error: "lock file parse error: <detail>".
func lockSyntaxErr(cause error, format string, args ...any) error {
	return lockErr(ErrLockSyntax, cause, "lock file parse error: "+format, args...)
}

// UnpinnedBaseImageError is the error core's build returns when a pinned base image is
// required and image (the normalized base.image) does not start with http:// or https://.
func UnpinnedBaseImageError(image string) error {
	return manifestErr(ErrUnpinnedBaseImage, nil, "base.image is not pinned: '%s' (expected http(s)://...)", image)
}

// DriftError reports that a manifest no longer matches its lock file. Field names the
// part that changed (base_image, runtime_backend, system_packages, hardware, gui_apps,
// mounts, network_isolation, cpu_shares, memory_limit_mb, or env_id for core's locked
// build check); Detail is the human message.
type DriftError struct {
	Field  string
	Detail string
}

func (e *DriftError) Error() string { return "lock file manifest drift: " + e.Detail }

// Is makes a DriftError match ErrLock.
func (e *DriftError) Is(target error) bool { return target == ErrLock }

// LockedIDDrift is the error of a locked build whose resolution gives another identity
// than the lock file: `locked mode: lock env_id '<lock>' does not match resolved env_id
// '<resolved>'`.
func LockedIDDrift(lockID, resolved EnvID) error {
	return &DriftError{Field: "env_id", Detail: fmt.Sprintf("locked mode: lock env_id '%s' does not match resolved env_id '%s'", lockID, resolved)}
}

// EnvIDMismatchError reports a lock whose stored env_id (or short_id) is not the one its
// content hashes to: the lock was edited by hand or corrupted.
type EnvIDMismatchError struct {
	LockID     string // as stored in the lock
	ComputedID string // recomputed from the lock's content
	ShortID    bool   // true when only short_id disagrees
}

func (e *EnvIDMismatchError) Error() string {
	if e.ShortID {
		return fmt.Sprintf("lock file short_id mismatch: lock has '%s', expected '%s'", e.LockID, e.ComputedID)
	}
	return fmt.Sprintf("lock file env_id mismatch: lock has '%s', recomputed '%s'", e.LockID, e.ComputedID)
}

// Is makes an EnvIDMismatchError match ErrLock.
func (e *EnvIDMismatchError) Is(target error) bool { return target == ErrLock }
