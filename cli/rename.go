package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type renameOptions struct {
	ref  string
	name string
	json bool
}

// renameResult is the `--json` shape of rename.
type renameResult struct {
	EnvID  string `json:"env_id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func newRenameCommand(g *globals) *cobra.Command {
	var opts renameOptions
	return &cobra.Command{
		Use:               "rename <env_id> <new_name>",
		Short:             "Name an environment (1-64 of [a-zA-Z0-9_-], unique)",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.name, opts.json = args[0], args[1], g.json
			return runRename(cmd.Context(), g, opts)
		},
	}
}

func runRename(ctx context.Context, g *globals, opts renameOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, true)
	if err != nil {
		return err
	}
	if err := e.Rename(ctx, id, opts.name); err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, renameResult{EnvID: id.String(), Name: opts.name, Status: "renamed"})
	}
	return printf(g.stdout, "renamed %s → '%s'\n", id.Short(), opts.name)
}
