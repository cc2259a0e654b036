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
// (failed is a count of all failures), then the failures and the layer, metadata and
// reference counts.
type verifyResult struct {
	Checked           int                  `json:"checked"`
	Passed            int                  `json:"passed"`
	Failed            int                  `json:"failed"`
	Failures          []core.VerifyFailure `json:"failures"`
	LayersChecked     int                  `json:"layers_checked"`
	LayersPassed      int                  `json:"layers_passed"`
	MetadataChecked   int                  `json:"metadata_checked"`
	MetadataPassed    int                  `json:"metadata_passed"`
	ReferencesChecked int                  `json:"references_checked"`
	ReferencesPassed  int                  `json:"references_passed"`
}

func newVerifyStoreCommand(g *globals) *cobra.Command {
	var opts verifyStoreOptions
	return &cobra.Command{
		Use:   "verify-store",
		Short: "Check every object, layer and metadata record and every reference between them",
		Long: "Check every object, layer and metadata record against its hash or checksum, and\n" +
			"that everything they refer to is stored: each environment's manifest object and its\n" +
			"base, dependency and policy layers, each layer's parent and objects (snapshots\n" +
			"included), and the objects, layers and metadata directories. Each failure is named\n" +
			"(a dangling reference says what refers to what). Exits 3 when anything fails.",
		Args: cobra.NoArgs,
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
			ReferencesChecked: r.RefsChecked, ReferencesPassed: r.RefsPassed,
		}
		if out.Failures == nil {
			out.Failures = []core.VerifyFailure{}
		}
		err = writeJSON(g.stdout, out)
	} else {
		err = printf(g.stdout, "store integrity: %d/%d objects passed\nstore references: %d/%d resolved\n",
			r.Passed, r.Checked, r.RefsPassed, r.RefsChecked)
		for _, f := range r.Failed {
			if err == nil {
				err = printf(g.stdout, "  FAIL %s\n", failureText(f))
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

// failureText names a failure in one line: the entry and why, or, for a missing
// directory or a dangling reference, the sentence that names both ends.
func failureText(f core.VerifyFailure) string {
	if f.Kind == "reference" || f.Kind == "directory" {
		return f.Reason
	}
	return f.Hash + ": " + f.Reason
}
