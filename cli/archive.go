package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func newArchiveCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:               "archive <env_id>",
		Short:             "Mark an environment archived (kept by gc, not enterable)",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runArchive(cmd.Context(), g, args[0])
		},
	}
}

func runArchive(ctx context.Context, g *globals, ref string) error {
	return runLifecycle(ctx, g, lifecycleOptions{
		ref:      ref,
		json:     g.json,
		status:   "archived",
		readOnly: false,
		apply: func(ctx context.Context, e *core.Engine, id schema.EnvID) error {
			return e.Archive(ctx, id)
		},
	})
}
