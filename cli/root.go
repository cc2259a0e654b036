package cli

import (
	"context"
	"io"

	"github.com/spf13/cobra"
)

// Version is the version printed by `karapace --version`; the Makefile sets it at link time.
var Version = "0.1.0-dev"

// globals holds what every command shares: flags and the injected streams.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "karapace",
		Short:         "Reproducible, content-addressed development environments",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	return root
}

// Main runs the karapace command line with args (without the program name) and returns
// the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRootCommand(g)
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		io.WriteString(stderr, "error: "+err.Error()+"\n")
		return 1
	}
	return 0
}
