package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type commitOptions struct {
	ref  string
	json bool
}

// commitResult is the `--json` shape of commit.
type commitResult struct {
	EnvID        string `json:"env_id"`
	SnapshotHash string `json:"snapshot_hash"`
}

func newCommitCommand(g *globals) *cobra.Command {
	var opts commitOptions
	return &cobra.Command{
		Use:               "commit <env_id>",
		Short:             "Snapshot an environment's writable layer",
		Long:              "Snapshot the writable layer of a built or frozen environment and print the snapshot\nhash that restore takes.",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json = args[0], g.json
			return runCommit(cmd.Context(), g, opts)
		},
	}
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
	key, err := e.Commit(ctx, id)
	if err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, commitResult{EnvID: id.String(), SnapshotHash: key.String()})
	}
	return printf(g.stdout, "committed snapshot %s for %s\n", key, opts.ref)
}
