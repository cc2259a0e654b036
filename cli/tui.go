package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/runtime/namespace"
	"github.com/karapace/karapace/tui"
)

type tuiOptions struct {
	json bool
}

func newTUICommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tui",
		Short: "Browse and manage environments in a terminal UI",
		Long:  "Browse, inspect, enter and manage environments in a full-screen terminal UI. Press ? in it\nfor the keys.",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTUI(cmd.Context(), g, tuiOptions{json: g.json})
		},
	}
}

func runTUI(ctx context.Context, g *globals, opts tuiOptions) error {
	if opts.json {
		return errors.New("JSON output is not supported for 'tui'")
	}
	// Without a controlling terminal there is nothing to draw on; say so plainly.
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("%w: the terminal UI needs a terminal (/dev/tty: %v)", tui.ErrTerminal, err)
	}
	tty.Close()
	root, err := g.storePath()
	if err != nil {
		return err
	}
	// The UI owns the terminal: no logger and no lock-wait notices on stderr.
	return tui.Run(ctx, tui.Options{
		StoreRoot:  root,
		Backends:   g.backends(),
		RemoveTree: namespace.RemoveTree,
		Version:    Version,
		Stdin:      g.stdin,
		Stdout:     g.stdout,
		Stderr:     g.stderr,
	})
}
