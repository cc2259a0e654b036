package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/schema"
)

type pinOptions struct {
	manifest  string
	check     bool
	writeLock bool
	json      bool
}

// pinResult is the `--json` shape of pin; base_image is absent for --check.
type pinResult struct {
	Status    string `json:"status"`
	Manifest  string `json:"manifest"`
	BaseImage string `json:"base_image,omitempty"`
}

func newPinCommand(g *globals) *cobra.Command {
	var opts pinOptions
	cmd := &cobra.Command{
		Use:   "pin [manifest]",
		Short: "Pin the manifest's base image to the exact URL of its current build",
		Long: "Replace base.image in the manifest (default karapace.toml) with the URL of the exact\n" +
			"image build it names today. --check only tells whether it is pinned (exit 1 if not).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.manifest = manifestArg(args)
			opts.json = g.json
			return runPin(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.check, "check", false, "only check that the base image is pinned")
	cmd.Flags().BoolVar(&opts.writeLock, "write-lock", false, "build after pinning, writing karapace.lock")
	return cmd
}

func isPinned(img string) bool {
	img = strings.TrimSpace(img)
	return strings.HasPrefix(img, "http://") || strings.HasPrefix(img, "https://")
}

func runPin(ctx context.Context, g *globals, opts pinOptions) error {
	m, err := schema.LoadManifest(opts.manifest)
	if err != nil {
		return err
	}
	original, err := os.ReadFile(opts.manifest)
	if err != nil {
		return fmt.Errorf("failed to read manifest: %w", err)
	}
	if opts.check {
		if !isPinned(m.Base.Image) {
			return fmt.Errorf("base.image is not pinned: '%s' (run 'karapace pin')", m.Base.Image)
		}
		if opts.json {
			return writeJSON(g.stdout, pinResult{Status: "pinned", Manifest: opts.manifest})
		}
		return printf(g.stdout, "base image in %s is pinned: %s\n", opts.manifest, strings.TrimSpace(m.Base.Image))
	}
	root, err := g.storePath()
	if err != nil {
		return err
	}
	url, err := image.NewCache(root, image.WithLogger(g.log)).Pin(ctx, strings.TrimSpace(m.Base.Image))
	if err != nil {
		return fmt.Errorf("failed to resolve pinned image URL: %w", err)
	}
	// Keep the user's comments and layout when the edit is a one-line change.
	data, ok := setImage(original, url)
	if !ok {
		m.Base.Image = url
		if data, err = encodeManifest(m); err != nil {
			return err
		}
	}
	if err := writeFileAtomic(opts.manifest, data, 0o644); err != nil {
		return err
	}
	if opts.writeLock {
		e, err := g.engineFor(ctx, false)
		if err != nil {
			return err
		}
		sp := g.spinner("building environment...", opts.json)
		if _, err := e.Build(ctx, opts.manifest, core.BuildOptions{Progress: sp.Progress, Transfer: sp.Transfer}); err != nil {
			sp.Fail("build failed")
			return err
		}
		sp.Success("environment built")
	}
	if opts.json {
		return writeJSON(g.stdout, pinResult{Status: "pinned", Manifest: opts.manifest, BaseImage: url})
	}
	return printf(g.stdout, "pinned base image in %s\n", opts.manifest)
}
