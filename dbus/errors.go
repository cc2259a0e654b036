package dbus

import (
	"context"
	"errors"

	godbus "github.com/godbus/dbus/v5"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// ErrorPrefix starts every D-Bus error name the service returns.
const ErrorPrefix = Interface + ".Error."

// D-Bus error names. Each reply error carries one of them and the error's text as its
// message, so a client can branch on the name and show the text.
const (
	ErrNameNotFound        = ErrorPrefix + "NotFound"        // no such environment
	ErrNameAmbiguous       = ErrorPrefix + "Ambiguous"       // an id prefix matching several
	ErrNameInvalidArgument = ErrorPrefix + "InvalidArgument" // a bad reference, name or path
	ErrNameNameTaken       = ErrorPrefix + "NameTaken"       // another environment has the name
	ErrNameInvalidManifest = ErrorPrefix + "InvalidManifest" // unreadable or invalid manifest
	ErrNameInvalidLockFile = ErrorPrefix + "InvalidLockFile" // karapace.lock unusable
	ErrNameStoreLocked     = ErrorPrefix + "StoreLocked"     // the store lock stayed held
	ErrNameInvalidState    = ErrorPrefix + "InvalidState"    // not allowed in this state
	ErrNameStore           = ErrorPrefix + "Store"           // the store failed
	ErrNameRuntime         = ErrorPrefix + "Runtime"         // the runtime backend failed
	ErrNameNoTerminal      = ErrorPrefix + "NoTerminal"      // no terminal emulator to run in
	ErrNameCancelled       = ErrorPrefix + "Cancelled"       // the service is shutting down
	ErrNameNotSupported    = ErrorPrefix + "NotSupported"    // not available in this build
	ErrNameFailed          = ErrorPrefix + "Failed"          // anything else
)

// Errors of this package.
var (
	// ErrNoTerminal: RunEnvironment found no terminal emulator.
	ErrNoTerminal = errors.New("no terminal emulator found")
	// ErrInvalidArgument: a method argument is unusable before anything is looked up.
	ErrInvalidArgument = errors.New("invalid argument")
)

// errorClasses is the one place where error classes become D-Bus error names. The
// first class that matches wins, so specific classes come before the broad ones they
// are wrapped in (a name conflict is also a store error).
var errorClasses = []struct {
	class error
	name  string
}{
	{core.ErrNotFound, ErrNameNotFound},
	{core.ErrAmbiguous, ErrNameAmbiguous},
	{core.ErrInvalidRef, ErrNameInvalidArgument},
	{ErrInvalidArgument, ErrNameInvalidArgument},
	{store.ErrInvalidName, ErrNameInvalidArgument},
	{store.ErrNameConflict, ErrNameNameTaken},
	{core.ErrLockTimeout, ErrNameStoreLocked},
	{store.ErrLocked, ErrNameStoreLocked},
	{core.ErrInvalidTransition, ErrNameInvalidState},
	{core.ErrManifest, ErrNameInvalidManifest},
	{schema.ErrManifest, ErrNameInvalidManifest},
	{core.ErrLockFile, ErrNameInvalidLockFile},
	{schema.ErrLock, ErrNameInvalidLockFile},
	{ErrNoTerminal, ErrNameNoTerminal},
	{context.Canceled, ErrNameCancelled},
	{core.ErrNotImplemented, ErrNameNotSupported},
	{core.ErrStore, ErrNameStore},
	{store.ErrStore, ErrNameStore},
	{core.ErrRuntime, ErrNameRuntime},
}

// errorName returns the D-Bus error name for err's class.
func errorName(err error) string {
	for _, c := range errorClasses {
		if errors.Is(err, c.class) {
			return c.name
		}
	}
	return ErrNameFailed
}

// dbusError turns err into the reply error: its class's name and its text.
func dbusError(err error) *godbus.Error {
	return godbus.NewError(errorName(err), []any{err.Error()})
}
