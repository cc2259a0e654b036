package cli

import (
	"context"
	"errors"
	"syscall"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Exit codes: the original's contract, plus 130 for a command cancelled by SIGINT or
// SIGTERM. Usage errors exit 2 like the original's clap, sharing the code with manifest
// errors.
const (
	exitOK        = 0
	exitFailure   = 1
	exitManifest  = 2
	exitUsage     = 2
	exitStore     = 3
	exitCancelled = 130
)

// usageError marks a command line the parser rejected.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitStatus is a command's verdict without an error message of its own: a failed
// verify-store (3), an unhealthy doctor (1), or the exit status of the command run by
// exec or enter. The command has already said what it needed to say.
type exitStatus struct{ code int }

func (e exitStatus) Error() string { return "" }

// startError is a session's command that could not be started (exit 127 or 126, as a
// shell's); its message is the launcher's.
type startError struct {
	code int
	err  error
}

func (e startError) Error() string { return e.err.Error() }
func (e startError) Unwrap() error { return e.err }

// exitCode is the one place where errors become exit codes. It decides by error class,
// never by message text.
func exitCode(ctx context.Context, err error) int {
	if err == nil {
		return exitOK
	}
	var st exitStatus
	var u usageError
	var se startError
	switch {
	case errors.As(err, &st):
		return st.code
	case errors.As(err, &se):
		return se.code
	case errors.As(err, &u):
		return exitUsage
	case errors.Is(err, syscall.EPIPE):
		// The reader of our output went away (`karapace list | head`): not a failure,
		// as in the original.
		return exitOK
	case ctx.Err() != nil:
		// SIGINT or SIGTERM cancelled the command; whatever it returned, it was cut short.
		return exitCancelled
	case errors.Is(err, syscall.ENOSPC):
		// A full disk is a store error whatever failed on it (a pull, a build step):
		// the message says to free space with destroy and gc.
		return exitStore
	case errors.Is(err, core.ErrRemote), errors.Is(err, core.ErrLockFile):
		// The original's "remote error" and "lock error" exit 1 even when a store or
		// manifest error is nested inside.
		return exitFailure
	case errors.Is(err, schema.ErrManifest), errors.Is(err, core.ErrManifest):
		return exitManifest
	case errors.Is(err, store.ErrStore), errors.Is(err, core.ErrStore), errors.Is(err, core.ErrLockTimeout):
		return exitStore
	}
	return exitFailure
}

// errorMessage is what `error: ...` prints for err, or "" when nothing should be printed.
func errorMessage(err error) string {
	if err == nil {
		return ""
	}
	var st exitStatus
	if errors.As(err, &st) {
		return ""
	}
	if errors.Is(err, syscall.EPIPE) {
		return ""
	}
	return err.Error()
}
