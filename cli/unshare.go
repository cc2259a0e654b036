package cli

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/namespace"
)

func newUnshareCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "unshare -- <command> [args...]",
		Short: "Run a host command as root of a user namespace with your id map, to inspect or clean the store",
		Long: "Run a command on the host as root of a new user namespace that maps 0 to you and\n" +
			"1..N to your subordinate range, as environments do (like `podman unshare`): files\n" +
			"that package scripts gave to system users inside an environment are then yours to\n" +
			"read, change or remove, e.g. `karapace unshare -- du -sh ~/.local/share/karapace`.\n" +
			"Only the user namespace is new. Without a subordinate range only you are mapped; as\n" +
			"root the command runs as it is. Exits with the command's status.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUnshare(cmd.Context(), g, args)
		},
	}
}

func runUnshare(ctx context.Context, g *globals, argv []string) error {
	code, err := namespace.Unshare(ctx, argv, runtime.Stdio{Stdin: g.stdin, Stdout: g.stdout, Stderr: g.stderr}, os.Environ(), namespace.Options{})
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus{code}
	}
	return nil
}
