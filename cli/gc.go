package cli

import (
	"context"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type gcOptions struct {
	dryRun bool
	json   bool
}

func newGCCommand(g *globals) *cobra.Command {
	var opts gcOptions
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Remove unreferenced environments, layers and objects",
		Long:  "Remove environments nobody references and the layers and objects nothing live uses.\nInterrupting gc stops it between items; what was removed stays removed.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.json = g.json
			return runGC(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.dryRun, "dry-run", false, "report what would be removed, remove nothing")
	return cmd
}

func runGC(ctx context.Context, g *globals, opts gcOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	r, err := e.GC(ctx, opts.dryRun)
	if err != nil {
		return err
	}
	for _, l := range []*[]string{&r.OrphanedEnvs, &r.OrphanedLayers, &r.OrphanedObjects} {
		if *l == nil {
			*l = []string{}
		}
	}
	if opts.json {
		err = writeJSON(g.stdout, r)
	} else {
		err = printGC(g, r)
	}
	if err != nil {
		return err
	}
	// An interrupted gc reports what it removed, then exits as cancelled.
	return ctx.Err()
}

func printGC(g *globals, r *core.GCReport) error {
	verb, envs, layers, objects := "removed", r.RemovedEnvs, r.RemovedLayers, r.RemovedObjects
	if r.DryRun {
		verb, envs, layers, objects = "would remove", len(r.OrphanedEnvs), len(r.OrphanedLayers), len(r.OrphanedObjects)
	}
	if err := printf(g.stdout, "gc: %s %d envs, %d layers, %d objects\n", verb, envs, layers, objects); err != nil {
		return err
	}
	if r.DryRun && len(r.OrphanedEnvs) > 0 {
		quoted := make([]string, len(r.OrphanedEnvs))
		for i, id := range r.OrphanedEnvs {
			quoted[i] = strconv.Quote(id)
		}
		return printf(g.stdout, "orphaned envs: [%s]\n", strings.Join(quoted, ", "))
	}
	return nil
}
