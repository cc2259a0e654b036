package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func newUnfreezeCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "unfreeze <env_id>",
		Short:             "Make a frozen environment built again (it can be entered)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runLifecycle(cmd.Context(), g, lifecycleOptions{
				ref:    args[0],
				json:   g.json,
				status: "unfrozen",
				apply: func(ctx context.Context, e *core.Engine, id schema.EnvID) error {
					return e.Unfreeze(ctx, id)
				},
			})
		},
	}
}
