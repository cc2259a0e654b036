package cli

import (
	"github.com/spf13/cobra"
)

func newRebuildCommand(g *globals) *cobra.Command {
	var opts buildOptions
	cmd := &cobra.Command{
		Use:   "rebuild [manifest]",
		Short: "Build the manifest again and replace the environment it built before",
		Long: "Build the manifest (default karapace.toml), then destroy the environment the lock file\n" +
			"(or the manifest's preliminary id) pointed at, when the id changed. The new environment\n" +
			"keeps the old one's name unless --name is given. Before building, rebuild refuses when\n" +
			"that environment has snapshots, changes made in its writable layer since its build or\n" +
			"exported apps the manifest does not list, and says which: --force drops them; build\n" +
			"instead keeps the old environment and moves its name to the new one.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.manifest = manifestArg(args)
			opts.json = g.json
			return runBuild(cmd.Context(), g, opts, true)
		},
	}
	addBuildFlags(cmd, &opts)
	cmd.Flags().BoolVarP(&opts.force, "force", "f", false, "destroy the old environment even when that drops its snapshots, changes or exported apps")
	return cmd
}
