package dbus

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// wrapIn wraps err in class the way core does (errors.Join keeps both in the chain).
func wrapIn(class, err error) error { return fmt.Errorf("%w: %w", class, err) }

func TestErrorNames(t *testing.T) {
	for _, c := range []struct {
		err  error
		name string
	}{
		{fmt.Errorf("%w: no environment matching 'x'", core.ErrNotFound), ErrNameNotFound},
		{&core.AmbiguousError{Ref: "a"}, ErrNameAmbiguous},
		{fmt.Errorf("%w: bad", core.ErrInvalidRef), ErrNameInvalidArgument},
		{fmt.Errorf("%w: empty", ErrInvalidArgument), ErrNameInvalidArgument},
		{wrapIn(core.ErrStore, store.ErrInvalidName), ErrNameInvalidArgument},
		{wrapIn(core.ErrStore, store.ErrNameConflict), ErrNameNameTaken},
		{fmt.Errorf("%w after 20s", core.ErrLockTimeout), ErrNameStoreLocked},
		{wrapIn(core.ErrStore, store.ErrLocked), ErrNameStoreLocked},
		{&core.TransitionError{From: "frozen", To: "running"}, ErrNameInvalidState},
		{wrapIn(core.ErrManifest, schema.ErrManifestSyntax), ErrNameInvalidManifest},
		{wrapIn(core.ErrManifest, schema.ErrManifestIO), ErrNameInvalidManifest},
		{wrapIn(core.ErrLockFile, schema.ErrLockSyntax), ErrNameInvalidLockFile},
		{fmt.Errorf("%w: set $TERMINAL", ErrNoTerminal), ErrNameNoTerminal},
		{fmt.Errorf("build: %w", context.Canceled), ErrNameCancelled},
		{wrapIn(core.ErrStore, store.ErrIntegrity), ErrNameStore},
		{wrapIn(core.ErrRuntime, runtime.ErrExecFailed), ErrNameRuntime},
		{fmt.Errorf("push: %w", core.ErrNotImplemented), ErrNameNotSupported},
		{wrapIn(core.ErrRemote, errors.New("connection refused")), ErrNameFailed},
		{errors.New("anything"), ErrNameFailed},
	} {
		if got := errorName(c.err); got != c.name {
			t.Errorf("errorName(%v) = %s, want %s", c.err, got, c.name)
		}
		de := dbusError(c.err)
		if de.Name != errorName(c.err) || len(de.Body) != 1 || de.Body[0] != c.err.Error() {
			t.Errorf("dbusError(%v) = %+v", c.err, de)
		}
	}
}

func TestStorePathAndIdleTimeout(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	if p, err := StorePath(env("KARAPACE_STORE", "/s", "HOME", "/h")); err != nil || p != "/s" {
		t.Errorf("StorePath with KARAPACE_STORE = %q, %v", p, err)
	}
	if p, err := StorePath(env("HOME", "/h")); err != nil || p != "/h/.local/share/karapace" {
		t.Errorf("StorePath = %q, %v", p, err)
	}
	if _, err := StorePath(env()); err == nil {
		t.Error("StorePath without HOME: no error")
	}
	for v, want := range map[string]string{"": "30s", "2": "2s", "0.5": "500ms", "0": "0s"} {
		d, err := IdleTimeout(env("KARAPACE_DBUS_IDLE_TIMEOUT", v))
		if err != nil || d.String() != want {
			t.Errorf("IdleTimeout(%q) = %s, %v; want %s", v, d, err, want)
		}
	}
	for _, v := range []string{"soon", "-1", "1e300", "NaN"} {
		if _, err := IdleTimeout(env("KARAPACE_DBUS_IDLE_TIMEOUT", v)); err == nil {
			t.Errorf("IdleTimeout(%q): no error", v)
		}
	}
	if a, err := SessionBusAddress(env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/x")); err != nil || a != "unix:path=/x" {
		t.Errorf("SessionBusAddress = %q, %v", a, err)
	}
	if a, err := SessionBusAddress(env("DBUS_STARTER_ADDRESS", "unix:path=/y", "DBUS_STARTER_BUS_TYPE", "session")); err != nil || a != "unix:path=/y" {
		t.Errorf("SessionBusAddress from the starter = %q, %v", a, err)
	}
	if _, err := SessionBusAddress(env("XDG_RUNTIME_DIR", t.TempDir())); err == nil {
		t.Error("SessionBusAddress without a bus: no error")
	}
}
