// Command karapace-dbus serves org.karapace.Manager1 on the session bus.
//
// Environment: KARAPACE_STORE (the store; default ~/.local/share/karapace),
// KARAPACE_DBUS_IDLE_TIMEOUT (seconds without calls or running work before it exits;
// default 30, 0 never), KARAPACE_LOG (debug, info, warn, error; default info),
// KARAPACE_BIN (the karapace binary RunEnvironment opens; default next to this
// program, else PATH), DBUS_SESSION_BUS_ADDRESS (the bus).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/karapace/karapace/dbus"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/runtime/namespace"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "karapace-dbus: error:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
		Level: logLevel(getenv("KARAPACE_LOG")),
		// The journal (or whoever reads stderr) stamps lines itself.
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	store, err := dbus.StorePath(getenv)
	if err != nil {
		return err
	}
	idle, err := dbus.IdleTimeout(getenv)
	if err != nil {
		return err
	}
	log.Info("karapace-dbus starting, store: " + store)
	addr, err := dbus.SessionBusAddress(getenv)
	if err != nil {
		return err
	}
	svc, err := dbus.New(ctx, dbus.Options{
		StoreRoot:   store,
		Backends:    backends(getenv, log),
		RemoveTree:  namespace.RemoveTree,
		Logger:      log,
		IdleTimeout: idle,
		KarapaceBin: getenv("KARAPACE_BIN"),
	})
	if err != nil {
		return err
	}
	return svc.Serve(ctx, addr)
}

// backends is the explicit backend registry: nothing registers itself. The namespace
// backend re-executes this binary into its sandboxes: importing it compiles its C
// entry point into karapace-dbus.
func backends(getenv func(string) string, log *slog.Logger) map[string]func() runtime.Backend {
	var mockOpts mock.Options
	// The test seam the CLI reads too: a slow mock build.
	if d, err := time.ParseDuration(getenv("KARAPACE_MOCK_BUILD_DELAY")); err == nil && d > 0 {
		mockOpts.BuildDelay = d
	}
	return map[string]func() runtime.Backend{
		mock.Name:   func() runtime.Backend { return mock.New(mockOpts) },
		"namespace": func() runtime.Backend { return namespace.New(namespace.BackendOptions{Logger: log}) },
	}
}

func logLevel(v string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		return slog.LevelInfo
	}
	return l
}
