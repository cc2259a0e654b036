package cli

import (
	"context"
	"strings"

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
	if err := printf(g.stdout,
		"env_id:      %s\nshort_id:    %s\nname:        %s\nstate:       %s\nbase_layer:  %s\ndeps:        %d\nref_count:   %d\ncreated_at:  %s\nupdated_at:  %s\n",
		env.EnvID, env.ShortID, name, colorizeState(env.State.String(), opts.color), env.BaseLayer,
		len(env.DependencyLayers), env.RefCount, env.CreatedAt, env.UpdatedAt); err != nil {
		return err
	}
	// What it is made of and what it takes on disk, after the original's fields.
	n, err := e.Manifest(ctx, id)
	if err != nil {
		return err
	}
	u, err := e.Usage(ctx, id)
	if err != nil {
		return err
	}
	mounts := make([]string, len(n.Mounts))
	for i, m := range n.Mounts {
		mounts[i] = m.Label + " " + m.HostPath + " -> " + m.ContainerPath
	}
	return printf(g.stdout, "image:       %s\nbackend:     %s\npackages:    %s\napps:        %s\nmounts:      %s\nsize:        %s base layer, %s writable layer\n",
		n.BaseImage, n.RuntimeBackend, listOrNone(n.SystemPackages), listOrNone(n.GUIApps),
		listOrNone(mounts), formatBytes(u.BaseLayer), formatBytes(u.Writable))
}

// listOrNone joins a list for a text report, "(none)" when it is empty.
func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none)"
	}
	return strings.Join(l, ", ")
}
