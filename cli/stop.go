package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func newStopCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "stop <env_id>",
		Short:             "Stop every session running in an environment (SIGTERM, then SIGKILL)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runStop(cmd.Context(), g, args[0])
		},
	}
}

func runStop(ctx context.Context, g *globals, ref string) error {
	return runLifecycle(ctx, g, lifecycleOptions{
		ref:      ref,
		json:     g.json,
		status:   "stopped",
		readOnly: true,
		apply: func(ctx context.Context, e *core.Engine, id schema.EnvID) error {
			return e.Stop(ctx, id)
		},
	})
}
