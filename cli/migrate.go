package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/store"
)

type migrateOptions struct {
	store string
	json  bool
}

// migrateResult is the `--json` shape of migrate; which fields appear depends on status
// (no_store, current, newer, migrated, error), as in the original.
type migrateResult struct {
	Status        string  `json:"status"`
	Message       string  `json:"message,omitempty"`
	FormatVersion *uint64 `json:"format_version,omitempty"`
	Found         *uint64 `json:"found,omitempty"`
	Supported     *uint64 `json:"supported,omitempty"`
	From          *uint32 `json:"from,omitempty"`
	To            *uint32 `json:"to,omitempty"`
	Environments  *int    `json:"environments,omitempty"`
	Backup        string  `json:"backup,omitempty"`
}

func newMigrateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Upgrade the store to the current format",
		Long:  "Upgrade an older store to the current format, keeping a backup of the old version\nfile. A missing store is not an error. Exits 1 when the store is newer than this karapace,\n3 when the store cannot be migrated (no space left, corruption, lock timeout).",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			root, err := g.storePath()
			if err != nil {
				return err
			}
			return runMigrate(cmd.Context(), g, migrateOptions{store: root, json: g.json})
		},
	}
}

func runMigrate(ctx context.Context, g *globals, opts migrateOptions) error {
	e, err := g.openEngine(ctx, true)
	if err != nil {
		return err
	}
	res, err := e.Migrate(ctx)
	current := uint64(store.FormatVersion)
	var out migrateResult
	var text string
	code := exitOK
	var vm *store.VersionMismatchError
	switch {
	case errors.As(err, &vm) && vm.Found > vm.Expected:
		found := vm.Found
		out = migrateResult{Status: "newer", Found: &found, Supported: &current}
		text = "Store format version: " + utoa(found) + "\nSupported: " + utoa(current) + "\n\nCreated by a newer Karapace. Please upgrade."
		code = exitFailure
	case err != nil:
		if ctx.Err() != nil {
			return err
		}
		out = migrateResult{Status: "error", Message: err.Error()}
		text = "Migration failed: " + err.Error()
		// The original exits 1 for every failure; a store that cannot be written (no
		// space left on device) or read is a store error like in every other command.
		code = exitCode(ctx, err)
		if code == exitOK {
			code = exitFailure
		}
	case res.Status == core.MigrateNoStore:
		out = migrateResult{Status: "no_store", Message: "No store found."}
		text = "No store found at " + opts.store + ". Nothing to migrate."
	case res.Status == core.MigrateCurrent:
		out = migrateResult{Status: "current", FormatVersion: &current}
		text = "Store format version: " + utoa(current) + " (current)\nNo migration needed."
	default:
		out = migrateResult{Status: "migrated", From: &res.FromVersion, To: &res.ToVersion, Environments: &res.Environments, Backup: res.BackupPath}
		text = "Migrated store from v" + utoa(uint64(res.FromVersion)) + " to v" + utoa(uint64(res.ToVersion)) + ".\n" +
			itoa(res.Environments) + " environments updated.\nBackup: " + res.BackupPath
	}
	if opts.json {
		err = writeJSON(g.stdout, out)
	} else {
		err = printf(g.stdout, "%s\n", text)
	}
	if err != nil {
		return err
	}
	if code != exitOK {
		return exitStatus{code}
	}
	return nil
}
