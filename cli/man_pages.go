package cli

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

type manPagesOptions struct {
	dir string
}

func newManPagesCommand(g *globals) *cobra.Command {
	var opts manPagesOptions
	return &cobra.Command{
		Use:   "man-pages [dir]",
		Short: "Write man pages for karapace and every subcommand",
		Long:  "Write karapace.1 and karapace-<command>.1 for every command into dir (default: man).",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.dir = "man"
			if len(args) == 1 {
				opts.dir = args[0]
			}
			return runManPages(cmd.Context(), opts, cmd.Root(), g.stdout)
		},
	}
}

func runManPages(_ context.Context, opts manPagesOptions, root *cobra.Command, w io.Writer) error {
	if err := os.MkdirAll(opts.dir, 0o755); err != nil {
		return fmt.Errorf("failed to create dir: %w", err)
	}
	root.DisableAutoGenTag = true
	header := &doc.GenManHeader{Title: "KARAPACE", Section: "1", Source: "Karapace " + Version, Manual: "Karapace Manual"}
	if err := doc.GenManTree(root, header, opts.dir); err != nil {
		return fmt.Errorf("man page render failed: %w", err)
	}
	return printf(w, "man pages written to %s\n", opts.dir)
}
