package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func newFreezeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "freeze <env_id>",
		Short:             "Mark an environment frozen (it can no longer be entered)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFreeze(cmd.Context(), g, args[0])
		},
	}
}

func runFreeze(ctx context.Context, g *globals, ref string) error {
	return runLifecycle(ctx, g, lifecycleOptions{
		ref:      ref,
		json:     g.json,
		status:   "frozen",
		readOnly: false,
		apply: func(ctx context.Context, e *core.Engine, id schema.EnvID) error {
			return e.Freeze(ctx, id)
		},
	})
}
