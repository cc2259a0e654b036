package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type listOptions struct {
	json  bool
	color bool
}

func newListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List environments",
		Long:    "List every environment, sorted by env_id. --json prints the metadata records.",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd.Context(), g, listOptions{json: g.json, color: g.colorEnabled()})
		},
	}
}

func runList(ctx context.Context, g *globals, opts listOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	envs, err := e.List(ctx)
	if err != nil {
		return err
	}
	if opts.json {
		if envs == nil {
			envs = []core.Env{}
		}
		return writeJSON(g.stdout, envs)
	}
	if len(envs) == 0 {
		return printf(g.stdout, "no environments found\n")
	}
	if err := printf(g.stdout, "%s %s %s %s\n", padRight("SHORT_ID", 14), padRight("NAME", 16), padRight("STATE", 10), "ENV_ID"); err != nil {
		return err
	}
	for i := range envs {
		env := &envs[i]
		state := env.State.String()
		// Pad first, colour after, so escape codes do not shift the columns.
		colored := colorizeState(state, opts.color) + padRight("", 10-len(state))
		if err := printf(g.stdout, "%s %s %s %s\n", padRight(env.ShortID, 14), padRight(env.DisplayName(), 16), colored, env.EnvID); err != nil {
			return err
		}
	}
	return nil
}
