package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type pullOptions struct {
	ref    string
	remote string
	json   bool
}

// pullResult is the `--json` shape of pull.
type pullResult struct {
	EnvID          string `json:"env_id"`
	ObjectsPulled  int    `json:"objects_pulled"`
	LayersPulled   int    `json:"layers_pulled"`
	ObjectsSkipped int    `json:"objects_skipped"`
	LayersSkipped  int    `json:"layers_skipped"`
}

func newPullCommand(g *globals) *cobra.Command {
	var opts pullOptions
	cmd := &cobra.Command{
		Use:   "pull <reference>",
		Short: "Download an environment from a remote store",
		Long:  "Download an environment from a remote store. reference is a registry reference\n(name or name@tag) or an env_id.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json = args[0], g.json
			return runPull(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.remote, "remote", "", "remote store URL (default: the configured remote)")
	return cmd
}

func runPull(ctx context.Context, g *globals, opts pullOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	rb, err := g.remoteBackend(opts.remote)
	if err != nil {
		return err
	}
	sp := g.spinner("pulling environment…", false)
	res, err := e.Pull(ctx, opts.ref, rb)
	if err != nil {
		sp.Fail("pull failed")
		return err
	}
	sp.Success("pull complete")
	if opts.json {
		return writeJSON(g.stdout, pullResult{EnvID: res.EnvID.String(), ObjectsPulled: res.ObjectsPulled,
			LayersPulled: res.LayersPulled, ObjectsSkipped: res.ObjectsSkipped, LayersSkipped: res.LayersSkipped})
	}
	return printf(g.stdout, "pulled %s (%d objects, %d layers; %d skipped)\n", res.EnvID.Short(),
		res.ObjectsPulled, res.LayersPulled, res.ObjectsSkipped+res.LayersSkipped)
}
