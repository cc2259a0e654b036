package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime/doctor"
	"github.com/karapace/karapace/store"
)

type doctorOptions struct {
	store string
	json  bool
}

// doctorCheck is one line of the doctor's report; status is pass, fail, warn or info.
type doctorCheck struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	// Fix says how to install or repair what a failed check found missing.
	Fix string `json:"fix,omitempty"`
}

// doctorResult is the `--json` shape of doctor.
type doctorResult struct {
	Healthy bool          `json:"healthy"`
	Checks  []doctorCheck `json:"checks"`
}

func newDoctorCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check what karapace needs from this machine and the health of the store",
		Long:  "Check the runtime prerequisites and the store (version, integrity, WAL, lock,\nenvironments, disk space), and say how to fix what is missing. Exits 1 when a check fails.\nIt never writes to the store. The terminal_injection line says whether the kernel lets\nprograms push input into their terminal (dev.tty.legacy_tiocsti); Karapace sessions are\nrefused that either way.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := g.storePath()
			if err != nil {
				return err
			}
			return runDoctor(cmd.Context(), g, doctorOptions{store: root, json: g.json})
		},
	}
}

func runDoctor(ctx context.Context, g *globals, opts doctorOptions) error {
	r := doctorResult{Healthy: true, Checks: []doctorCheck{}}
	addCheck := func(c doctorCheck) {
		r.Checks = append(r.Checks, c)
		if c.Status == "fail" {
			r.Healthy = false
		}
	}
	add := func(name, status, format string, args ...any) {
		addCheck(doctorCheck{Name: name, Status: status, Message: fmt.Sprintf(format, args...)})
	}
	doctorRuntime(ctx, g, opts.store, addCheck)
	layout := store.NewLayout(opts.store)
	if _, err := os.Stat(layout.StoreDir()); err != nil {
		add("store_exists", "info", "Store not initialized (will be created on first build)")
	} else {
		add("store_exists", "pass", "Store directory exists")
		doctorStore(ctx, g, layout, add)
	}
	var err error
	if opts.json {
		err = writeJSON(g.stdout, r)
	} else {
		err = printDoctor(g, r)
	}
	if err != nil {
		return err
	}
	if !r.Healthy {
		return exitStatus{exitFailure}
	}
	return nil
}

// doctorRuntime runs the runtime's host checks (namespaces, overlay, id mapping,
// cgroups, OCI runtime, store writability, disk space), each with its fix.
func doctorRuntime(ctx context.Context, g *globals, root string, add func(c doctorCheck)) {
	for _, c := range doctor.Run(ctx, doctor.Options{StoreRoot: root, Getenv: g.getenv, Logger: g.log}) {
		add(doctorCheck{Name: c.Name, Status: c.Status(), Message: c.Detail, Fix: c.Fix})
	}
}

// integrityProblems words a failed verification for doctor: how many, the first few
// by name, and where the rest are.
func integrityProblems(rep *core.VerifyReport) string {
	const shown = 3
	var names []string
	for _, f := range rep.Failed[:min(shown, len(rep.Failed))] {
		names = append(names, failureText(f))
	}
	msg := fmt.Sprintf("%d problems in the store: %s", len(rep.Failed), strings.Join(names, "; "))
	if len(rep.Failed) > shown {
		msg += fmt.Sprintf("; and %d more", len(rep.Failed)-shown)
	}
	return msg + " (verify-store lists them all)"
}

// doctorStore checks an existing store without writing to it.
func doctorStore(ctx context.Context, g *globals, layout store.Layout, add func(name, status, format string, args ...any)) {
	if err := layout.VerifyVersion(); err != nil {
		add("store_version", "fail", "Store version check failed: %v", err)
		return
	}
	add("store_version", "pass", "Store format version valid")
	e, err := g.openEngine(ctx, true)
	if err != nil {
		add("store_integrity", "fail", "Integrity check failed: %v", err)
		return
	}
	if rep, err := e.Verify(ctx); err != nil {
		add("store_integrity", "fail", "Integrity check failed: %v", err)
	} else if !rep.OK() {
		add("store_integrity", "fail", "%s", integrityProblems(rep))
	} else {
		add("store_integrity", "pass", "Store integrity OK (%d objects and %d references checked)", rep.Checked, rep.RefsChecked)
	}
	switch entries, err := os.ReadDir(layout.WALDir()); {
	case errors.Is(err, fs.ErrNotExist):
		add("wal_clean", "pass", "WAL is clean (no incomplete entries)")
	case err != nil:
		add("wal_clean", "warn", "Cannot read WAL: %v", err)
	case len(entries) == 0:
		add("wal_clean", "pass", "WAL is clean (no incomplete entries)")
	default:
		add("wal_clean", "warn", "WAL has %d incomplete entries (will recover on next start)", len(entries))
	}
	switch held, err := lockHeld(layout.LockFile()); {
	case err != nil:
		add("store_lock", "fail", "Cannot check store lock: %v", err)
	case held:
		add("store_lock", "warn", "Store lock is held by another process")
	default:
		add("store_lock", "pass", "Store lock is free")
	}
	envs, err := e.List(ctx)
	if err != nil {
		add("environments", "warn", "Cannot list environments: %v", err)
		return
	}
	running := 0
	for _, env := range envs {
		if env.State == core.Running {
			running++
		}
	}
	add("environments", "info", "%d environments (%d running)", len(envs), running)
}

// lockHeld probes the store lock without taking it for longer than the probe and
// without creating the lock file.
func lockHeld(path string) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, unix.Flock(int(f.Fd()), unix.LOCK_UN)
}

func printDoctor(g *globals, r doctorResult) error {
	icons := map[string]string{"pass": "✓", "fail": "✗", "warn": "⚠", "info": "ℹ"}
	if err := printf(g.stdout, "Karapace Doctor\n\n"); err != nil {
		return err
	}
	for _, c := range r.Checks {
		if err := printf(g.stdout, "  %s %s: %s\n", icons[c.Status], c.Name, c.Message); err != nil {
			return err
		}
		if c.Fix != "" && c.Status != "pass" {
			if err := printf(g.stdout, "      fix: %s\n", strings.ReplaceAll(c.Fix, "\n", "\n           ")); err != nil {
				return err
			}
		}
	}
	if r.Healthy {
		return printf(g.stdout, "\nAll checks passed.\n")
	}
	return printf(g.stdout, "\nSome checks failed. See above for details.\n")
}
