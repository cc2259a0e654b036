package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type snapshotsOptions struct {
	ref  string
	json bool
}

// snapshotsResult is the `--json` shape of snapshots.
type snapshotsResult struct {
	EnvID     string          `json:"env_id"`
	Snapshots []core.Snapshot `json:"snapshots"`
}

func newSnapshotsCommand(g *globals) *cobra.Command {
	var opts snapshotsOptions
	return &cobra.Command{
		Use:               "snapshots <env_id>",
		Short:             "List an environment's snapshots",
		Long:              "List the snapshots committed from an environment, with their time, size and message.\nrestore takes the restore_hash, or any unique prefix of it.",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json = args[0], g.json
			return runSnapshots(cmd.Context(), g, opts)
		},
	}
}

func runSnapshots(ctx context.Context, g *globals, opts snapshotsOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, !opts.json)
	if err != nil {
		return err
	}
	snaps, err := e.Snapshots(ctx, id)
	if err != nil {
		return err
	}
	if opts.json {
		if snaps == nil {
			snaps = []core.Snapshot{}
		}
		return writeJSON(g.stdout, snapshotsResult{EnvID: id.String(), Snapshots: snaps})
	}
	if len(snaps) == 0 {
		return printf(g.stdout, "no snapshots for %s\n", opts.ref)
	}
	if err := printf(g.stdout, "snapshots for %s:\n", opts.ref); err != nil {
		return err
	}
	for _, s := range snaps {
		size := fmt.Sprintf("%.1f MiB", float64(s.Size)/(1<<20))
		if s.Size < 1<<20 {
			size = fmt.Sprintf("%.1f KiB", float64(s.Size)/(1<<10))
		}
		line := fmt.Sprintf("  %s  %s  %s", s.Key, s.CreatedAt, size)
		if s.Message != "" {
			line += "  " + s.Message
		}
		if err := printf(g.stdout, "%s\n", line); err != nil {
			return err
		}
	}
	return nil
}
