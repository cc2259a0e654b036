package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type commitOptions struct {
	ref     string
	message string
	json    bool
}

// commitResult is the `--json` shape of commit.
type commitResult struct {
	EnvID        string `json:"env_id"`
	SnapshotHash string `json:"snapshot_hash"`
}

func newCommitCommand(g *globals) *cobra.Command {
	var opts commitOptions
	cmd := &cobra.Command{
		Use:               "commit <env_id>",
		Short:             "Snapshot an environment's writable layer",
		Long:              "Snapshot the writable layer of a built or frozen environment and print the snapshot\nhash that restore takes (any unique prefix of it will do). snapshots lists them with\ntheir time, size and message.",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json = args[0], g.json
			return runCommit(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVarP(&opts.message, "message", "m", "", "a note kept with the snapshot, shown by snapshots")
	return cmd
}

func runCommit(ctx context.Context, g *globals, opts commitOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, !opts.json)
	if err != nil {
		return err
	}
	key, err := e.Commit(ctx, id, core.CommitOptions{Message: opts.message})
	if err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, commitResult{EnvID: id.String(), SnapshotHash: key.String()})
	}
	return printf(g.stdout, "committed snapshot %s for %s\n", key, opts.ref)
}
