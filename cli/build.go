package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type buildOptions struct {
	manifest           string
	name               string
	locked             bool
	offline            bool
	requirePinnedImage bool
	force              bool // rebuild only
	json               bool
}

// buildResult is the `--json` shape of build and rebuild.
type buildResult struct {
	EnvID   string  `json:"env_id"`
	ShortID string  `json:"short_id"`
	Name    *string `json:"name"`
	Status  string  `json:"status"`
}

func newBuildCommand(g *globals) *cobra.Command {
	var opts buildOptions
	cmd := &cobra.Command{
		Use:   "build [manifest]",
		Short: "Build an environment from a manifest (default karapace.toml)",
		Long: "Resolve the manifest to exact versions, build the environment, record it as built and\n" +
			"write karapace.lock next to the manifest.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.manifest = manifestArg(args)
			opts.json = g.json
			return runBuild(cmd.Context(), g, opts, false)
		},
	}
	addBuildFlags(cmd, &opts)
	return cmd
}

func addBuildFlags(cmd *cobra.Command, opts *buildOptions) {
	f := cmd.Flags()
	f.StringVar(&opts.name, "name", "", "name the environment (1-64 of [a-zA-Z0-9_-], unique)")
	f.BoolVar(&opts.locked, "locked", false, "build exactly what karapace.lock says; fail if the manifest or resolution drifted")
	f.BoolVar(&opts.offline, "offline", false, "forbid network access (fails when packages must be resolved)")
	f.BoolVar(&opts.requirePinnedImage, "require-pinned-image", false, "refuse a base image that is not an http(s) URL")
}

// manifestArg is the optional manifest argument, karapace.toml by default.
func manifestArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return "karapace.toml"
}

// runBuild runs build, or rebuild when rebuild is set: they differ only in the engine
// call and the words printed.
func runBuild(ctx context.Context, g *globals, opts buildOptions, rebuild bool) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	words := [...]string{"building environment...", "environment built", "build failed", "built", "built environment"}
	if rebuild {
		words = [...]string{"rebuilding environment...", "environment rebuilt", "rebuild failed", "rebuilt", "rebuilt environment"}
	}
	sp := g.spinner(words[0], opts.json)
	bo := core.BuildOptions{
		Name:               opts.name,
		Locked:             opts.locked,
		Offline:            opts.offline,
		RequirePinnedImage: opts.requirePinnedImage,
		Force:              opts.force,
		Progress:           sp.Progress,
		Transfer:           sp.Transfer,
	}
	var res *core.BuildResult
	if rebuild {
		res, err = e.Rebuild(ctx, opts.manifest, bo)
	} else {
		res, err = e.Build(ctx, opts.manifest, bo)
	}
	if err != nil {
		sp.Fail(words[2])
		return err
	}
	sp.Success(words[1])
	if !res.NameFrom.IsZero() && len(res.Replaced) == 0 {
		fmt.Fprintf(g.stderr, "name '%s' moved from %s, built from this project before; that environment stays (karapace destroy %s)\n",
			res.Name, res.NameFrom.Short(), res.NameFrom.Short())
	}
	return printBuildResult(g.stdout, res, words[3], words[4], opts.json)
}

func printBuildResult(w io.Writer, res *core.BuildResult, status, verb string, asJSON bool) error {
	if asJSON {
		out := buildResult{EnvID: res.EnvID.String(), ShortID: res.ShortID, Status: status}
		if res.Name != "" {
			out.Name = &res.Name
		}
		return writeJSON(w, out)
	}
	if res.Name != "" {
		if err := printf(w, "%s '%s' (%s)\n", verb, res.Name, res.ShortID); err != nil {
			return err
		}
	} else if err := printf(w, "%s %s\n", verb, res.ShortID); err != nil {
		return err
	}
	return printf(w, "env_id: %s\n", res.EnvID)
}
