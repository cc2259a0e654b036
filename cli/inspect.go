package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type inspectOptions struct {
	ref   string
	json  bool
	color bool
}

func newInspectCommand(g *globals) *cobra.Command {
	var opts inspectOptions
	return &cobra.Command{
		Use:               "inspect <env_id>",
		Short:             "Show an environment's metadata",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json, opts.color = args[0], g.json, g.colorEnabled()
			return runInspect(cmd.Context(), g, opts)
		},
	}
}

func runInspect(ctx context.Context, g *globals, opts inspectOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, !opts.json)
	if err != nil {
		return err
	}
	env, err := e.Inspect(ctx, id)
	if err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, env)
	}
	name := env.DisplayName()
	if name == "" {
		name = "(none)"
	}
	return printf(g.stdout,
		"env_id:      %s\nshort_id:    %s\nname:        %s\nstate:       %s\nbase_layer:  %s\ndeps:        %d\nref_count:   %d\ncreated_at:  %s\nupdated_at:  %s\n",
		env.EnvID, env.ShortID, name, colorizeState(env.State.String(), opts.color), env.BaseLayer,
		len(env.DependencyLayers), env.RefCount, env.CreatedAt, env.UpdatedAt)
}
