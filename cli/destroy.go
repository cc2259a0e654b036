package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func newDestroyCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "destroy <env_id>",
		Short:             "Remove an environment (refused while it is running)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runDestroy(cmd.Context(), g, args[0])
		},
	}
}

func runDestroy(ctx context.Context, g *globals, ref string) error {
	return runLifecycle(ctx, g, lifecycleOptions{
		ref:      ref,
		json:     g.json,
		status:   "destroyed",
		readOnly: false,
		apply: func(ctx context.Context, e *core.Engine, id schema.EnvID) error {
			return e.Destroy(ctx, id)
		},
	})
}
