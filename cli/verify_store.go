package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type verifyStoreOptions struct {
	json bool
}

// verifyResult is the `--json` shape of verify-store: the original's three counts
// (failed is a count), then the failures and the layer and metadata counts.
type verifyResult struct {
	Checked         int                  `json:"checked"`
	Passed          int                  `json:"passed"`
	Failed          int                  `json:"failed"`
	Failures        []core.VerifyFailure `json:"failures"`
	LayersChecked   int                  `json:"layers_checked"`
	LayersPassed    int                  `json:"layers_passed"`
	MetadataChecked int                  `json:"metadata_checked"`
	MetadataPassed  int                  `json:"metadata_passed"`
}

func newVerifyStoreCommand(g *globals) *cobra.Command {
	var opts verifyStoreOptions
	return &cobra.Command{
		Use:   "verify-store",
		Short: "Check every object, layer and metadata record against its hash",
		Long:  "Check every object, layer and metadata record against its hash or checksum.\nExits 3 when anything fails.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.json = g.json
			return runVerifyStore(cmd.Context(), g, opts)
		},
	}
}

func runVerifyStore(ctx context.Context, g *globals, opts verifyStoreOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	r, err := e.Verify(ctx)
	if err != nil {
		return err
	}
	if opts.json {
		out := verifyResult{
			Checked: r.Checked, Passed: r.Passed, Failed: len(r.Failed), Failures: r.Failed,
			LayersChecked: r.LayersChecked, LayersPassed: r.LayersPassed,
			MetadataChecked: r.MetadataChecked, MetadataPassed: r.MetadataPassed,
		}
		if out.Failures == nil {
			out.Failures = []core.VerifyFailure{}
		}
		err = writeJSON(g.stdout, out)
	} else {
		err = printf(g.stdout, "store integrity: %d/%d objects passed\n", r.Passed, r.Checked)
		for _, f := range r.Failed {
			if err == nil {
				err = printf(g.stdout, "  FAIL %s: %s\n", f.Hash, f.Reason)
			}
		}
	}
	if err != nil {
		return err
	}
	if !r.OK() {
		return exitStatus{exitStore}
	}
	return nil
}
