package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/schema"
)

type restoreOptions struct {
	ref      string
	snapshot string
	json     bool
}

// restoreResult is the `--json` shape of restore.
type restoreResult struct {
	EnvID            string `json:"env_id"`
	RestoredSnapshot string `json:"restored_snapshot"`
}

func newRestoreCommand(g *globals) *cobra.Command {
	var opts restoreOptions
	return &cobra.Command{
		Use:               "restore <env_id> <snapshot>",
		Short:             "Replace an environment's writable layer with a snapshot",
		Long:              "Replace the writable layer of a built or frozen environment with one of its snapshots\n(the restore_hash printed by commit and snapshots, or any unique prefix of it).",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.snapshot, opts.json = args[0], args[1], g.json
			return runRestore(cmd.Context(), g, opts)
		},
	}
}

func runRestore(ctx context.Context, g *globals, opts restoreOptions) error {
	if !schema.IsHexPrefix(opts.snapshot) {
		return fmt.Errorf("invalid snapshot hash '%s': want its hex digits or a unique prefix of them", opts.snapshot)
	}
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, !opts.json)
	if err != nil {
		return err
	}
	snap, err := e.ResolveSnapshot(ctx, id, opts.snapshot)
	if err != nil {
		return err
	}
	if err := e.Restore(ctx, id, snap); err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, restoreResult{EnvID: id.String(), RestoredSnapshot: snap.String()})
	}
	return printf(g.stdout, "restored %s from snapshot %s\n", opts.ref, snap)
}
