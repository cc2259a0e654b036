package core

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/karapace/karapace/schema"
)

// Error classes. Every error the Engine returns matches one of them with errors.Is, and
// keeps the lower module's error in its chain (schema.ErrManifest, a store error, a
// runtime error, a remote error), so frontends map classes in one place: a manifest
// error is exit 2, a store error exit 3, anything else exit 1.
var (
	// ErrManifest: the manifest cannot be read, parsed or normalized, or violates a build
	// option (an unpinned image with RequirePinnedImage). Display prefix "manifest error".
	ErrManifest = errors.New("manifest error")
	// ErrLockFile: the lock file (karapace.lock) is unreadable, tampered with, or no
	// longer matches the manifest. Display prefix "lock error".
	ErrLockFile = errors.New("lock error")
	// ErrStore: the store failed (version mismatch, integrity failure, I/O, invalid or
	// conflicting name). Display prefix "store error".
	ErrStore = errors.New("store error")
	// ErrRuntime: the runtime backend failed or is unavailable. Display prefix
	// "runtime error".
	ErrRuntime = errors.New("runtime error")
	// ErrRemote: push or pull failed. Display prefix "remote error".
	ErrRemote = errors.New("remote error")

	// ErrNotFound: no environment (or snapshot) with that id. Display
	// "environment not found: <what>".
	ErrNotFound = errors.New("environment not found")
	// ErrInvalidTransition: the operation is not allowed in the environment's state.
	// The error is a *TransitionError.
	ErrInvalidTransition = errors.New("invalid state transition")
	// ErrInvalidRef: a reference is neither a hex id prefix nor a valid name.
	ErrInvalidRef = errors.New("invalid environment reference")
	// ErrAmbiguous: a reference prefix matches several environments; the error is an
	// *AmbiguousError listing them.
	ErrAmbiguous = errors.New("ambiguous environment reference")
	// ErrLockTimeout: the store lock stayed held by someone else for longer than
	// Options.LockTimeout.
	ErrLockTimeout = errors.New("timed out waiting for the store lock")
	// ErrWouldDiscard: a rebuild without force would destroy what it cannot make
	// again; the error is a *DiscardError.
	ErrWouldDiscard = errors.New("rebuild would discard data")
	// ErrNotImplemented: the operation needs a module that is not wired in yet.
	ErrNotImplemented = errors.New("not implemented")
)

// classError puts an error into one of the classes above and displays as
// "<class>: <err>", the original's CoreError strings (for example
// "store error: store format version mismatch: expected 2, found 1").
type classError struct {
	class error
	err   error
}

func (e *classError) Error() string   { return e.class.Error() + ": " + e.err.Error() }
func (e *classError) Unwrap() []error { return []error{e.class, e.err} }

// classify wraps err in class unless it is nil or already of that class.
func classify(class, err error) error {
	if err == nil || errors.Is(err, class) {
		return err
	}
	return &classError{class: class, err: err}
}

// notFound returns an ErrNotFound error displaying as "environment not found: <what>".
func notFound(what string) error { return fmt.Errorf("%w: %s", ErrNotFound, what) }

// TransitionError is an operation refused in the environment's current state. It
// displays as the original: "invalid state transition: <from> -> <to>", where To is a
// state or, for destroy/commit/restore, an explanation.
type TransitionError struct {
	From string
	To   string
	// Hint, when set, says how to get to a state that allows the operation; it follows
	// the original's text after "; ".
	Hint string
}

func (e *TransitionError) Error() string {
	if e.Hint != "" {
		return fmt.Sprintf("invalid state transition: %s -> %s; %s", e.From, e.To, e.Hint)
	}
	return fmt.Sprintf("invalid state transition: %s -> %s", e.From, e.To)
}

// Is makes errors.Is(err, ErrInvalidTransition) true.
func (e *TransitionError) Is(target error) bool { return target == ErrInvalidTransition }

// AmbiguousError is a reference prefix that matches more than one environment.
type AmbiguousError struct {
	Ref        string
	Candidates []Env // sorted by env id
}

func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("ambiguous env_id prefix '%s': matches %d environments", e.Ref, len(e.Candidates))
}

// Is makes errors.Is(err, ErrAmbiguous) true.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// msgError displays exactly msg and matches cause with errors.Is/As: for the original's
// display strings over a sentinel whose own text would repeat them.
type msgError struct {
	msg   string
	cause error
}

func (e *msgError) Error() string { return e.msg }
func (e *msgError) Unwrap() error { return e.cause }

func withMsg(cause error, format string, args ...any) error {
	return &msgError{msg: fmt.Sprintf(format, args...), cause: cause}
}

// noSpaceError is an operation that failed because the store's file system is full.
type noSpaceError struct{ err error }

func (e *noSpaceError) Error() string {
	return "no space left on device: free space (karapace destroy <env>, then karapace gc) and retry: " + e.err.Error()
}
func (e *noSpaceError) Unwrap() error { return e.err }

// noSpace makes an error caused by a full file system (ENOSPC anywhere in its chain) a
// store error that says how to get space back; destroy and gc work on a full disk.
func noSpace(err error) error {
	var ns *noSpaceError
	if err == nil || !errors.Is(err, syscall.ENOSPC) || errors.As(err, &ns) {
		return err
	}
	if ce, ok := err.(*classError); ok && ce.class == ErrStore {
		err = ce.err // "store error: " once
	}
	return &classError{class: ErrStore, err: &noSpaceError{err: err}}
}

// Discard is what destroying one environment drops that a build cannot make again.
type Discard struct {
	EnvID     schema.EnvID
	Name      string
	Snapshots int      // committed snapshots, restorable only there
	Changed   bool     // the writable layer differs from what its build left
	Apps      []string // exported apps the manifest does not list
}

// Any reports whether anything would be lost.
func (d Discard) Any() bool { return d.Snapshots > 0 || d.Changed || len(d.Apps) > 0 }

// String lists what is lost: "2 snapshots, the changes in its writable layer, ...".
func (d Discard) String() string {
	var parts []string
	if d.Snapshots > 0 {
		parts = append(parts, plural(d.Snapshots, "snapshot"))
	}
	if d.Changed {
		parts = append(parts, "the changes made in its writable layer since it was built")
	}
	if len(d.Apps) > 0 {
		parts = append(parts, "exported app(s) "+strings.Join(d.Apps, ", "))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// DiscardError is a rebuild refused because it would drop data (ErrWouldDiscard).
type DiscardError struct{ Envs []Discard }

func (e *DiscardError) Error() string {
	var b strings.Builder
	b.WriteString("rebuild refused: it would destroy ")
	for i, d := range e.Envs {
		if i > 0 {
			b.WriteString("; and ")
		}
		if d.Name != "" {
			fmt.Fprintf(&b, "'%s' (%s)", d.Name, d.EnvID.Short())
		} else {
			b.WriteString(d.EnvID.Short())
		}
		b.WriteString(" with " + d.String())
	}
	b.WriteString(". Pass --force to drop that, or run 'karapace build', which keeps the environment and moves its name to the new one")
	return b.String()
}

func (e *DiscardError) Unwrap() error { return ErrWouldDiscard }
