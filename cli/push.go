package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type pushOptions struct {
	ref    string
	tag    string
	remote string
	json   bool
}

// pushResult is the `--json` shape of push.
type pushResult struct {
	EnvID          string  `json:"env_id"`
	Tag            *string `json:"tag"`
	ObjectsPushed  int     `json:"objects_pushed"`
	LayersPushed   int     `json:"layers_pushed"`
	ObjectsSkipped int     `json:"objects_skipped"`
	LayersSkipped  int     `json:"layers_skipped"`
}

func newPushCommand(g *globals) *cobra.Command {
	var opts pushOptions
	cmd := &cobra.Command{
		Use:               "push <env_id>",
		Short:             "Upload an environment to a remote store",
		Long:              "Upload an environment's metadata, layers and objects to a remote store and, with --tag,\npublish it in the remote registry (\"name\" means \"name@latest\").",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json = args[0], g.json
			return runPush(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.tag, "tag", "", "publish under this registry reference (name or name@tag)")
	cmd.Flags().StringVar(&opts.remote, "remote", "", "remote store URL (default: the configured remote)")
	return cmd
}

func runPush(ctx context.Context, g *globals, opts pushOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, !opts.json)
	if err != nil {
		return err
	}
	rb, err := g.remoteBackend(opts.remote)
	if err != nil {
		return err
	}
	sp := g.spinner("pushing environment…", false)
	res, err := e.Push(ctx, id, rb, core.PushOptions{Tag: opts.tag, Progress: sp.Progress})
	if err != nil {
		sp.Fail("push failed")
		return err
	}
	sp.Success("push complete")
	if opts.json {
		out := pushResult{EnvID: res.EnvID.String(), ObjectsPushed: res.ObjectsPushed, LayersPushed: res.LayersPushed,
			ObjectsSkipped: res.ObjectsSkipped, LayersSkipped: res.LayersSkipped}
		if res.Tag != "" {
			out.Tag = &res.Tag
		}
		return writeJSON(g.stdout, out)
	}
	if err := printf(g.stdout, "pushed %s (%d objects, %d layers; %d skipped)\n", res.EnvID.Short(),
		res.ObjectsPushed, res.LayersPushed, res.ObjectsSkipped+res.LayersSkipped); err != nil {
		return err
	}
	if res.Tag != "" {
		return printf(g.stdout, "tagged as '%s'\n", res.Tag)
	}
	return nil
}
