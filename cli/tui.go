package cli

import (
	"context"
	"errors"

	"github.com/spf13/cobra"
)

// errTUIUnavailable is returned until the terminal UI module lands.
var errTUIUnavailable = errors.New("the terminal UI is not available yet in this build of karapace")

type tuiOptions struct {
	store string
	json  bool
}

func newTUICommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "tui",
		Short: "Browse and manage environments in a terminal UI",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTUI(cmd.Context(), tuiOptions{store: g.storePath(), json: g.json})
		},
	}
}

func runTUI(_ context.Context, opts tuiOptions) error {
	if opts.json {
		return errors.New("JSON output is not supported for 'tui'")
	}
	return errTUIUnavailable
}
