package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type diffOptions struct {
	ref  string
	json bool
}

func newDiffCommand(g *globals) *cobra.Command {
	var opts diffOptions
	return &cobra.Command{
		Use:               "diff <env_id>",
		Short:             "Show files added, modified and removed in an environment's writable layer",
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.json = args[0], g.json
			return runDiff(cmd.Context(), g, opts)
		},
	}
}

func runDiff(ctx context.Context, g *globals, opts diffOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, !opts.json)
	if err != nil {
		return err
	}
	d, err := e.Diff(ctx, id)
	if err != nil {
		return err
	}
	if opts.json {
		for _, l := range []*[]string{&d.Added, &d.Modified, &d.Removed} {
			if *l == nil {
				*l = []string{}
			}
		}
		return writeJSON(g.stdout, d)
	}
	if !d.HasDrift {
		return printf(g.stdout, "no drift detected in environment %s\n", opts.ref)
	}
	if err := printf(g.stdout, "drift detected in environment %s:\n", opts.ref); err != nil {
		return err
	}
	for _, group := range []struct {
		mark  string
		paths []string
	}{{"+", d.Added}, {"~", d.Modified}, {"-", d.Removed}} {
		for _, p := range group.paths {
			if err := printf(g.stdout, "  %s %s\n", group.mark, p); err != nil {
				return err
			}
		}
	}
	return nil
}
