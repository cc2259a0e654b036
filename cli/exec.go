package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/runtime"
)

type execOptions struct {
	ref     string
	argv    []string
	session sessionFlags
}

func newExecCommand(g *globals) *cobra.Command {
	var opts execOptions
	cmd := &cobra.Command{
		Use:   "exec [env_id] -- <cmd>...",
		Short: "Run a command in an environment",
		Long: "Run cmd in a built environment with stdin, stdout and stderr streamed. karapace exits\n" +
			"with the command's exit status (128+n when it is killed by signal n). Without env_id:\n" +
			"the environment of the karapace.toml in the current directory or the nearest parent.",
		// Flags go before the --; "[flags]" after the command would mislead.
		DisableFlagsInUseLine: true,
		Args:                  dashArgs(1, 1),
		ValidArgsFunction:     completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.argv = splitRef(cmd, args)
			return runExec(cmd.Context(), g, opts)
		},
	}
	opts.session.add(cmd)
	return cmd
}

func runExec(ctx context.Context, g *globals, opts execOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolveOrProject(ctx, g, e, opts.ref)
	if err != nil {
		return err
	}
	if opts.ref != "" {
		e.NoteExecRef(ctx, opts.ref, id)
	}
	so, err := opts.session.options()
	if err != nil {
		return err
	}
	code, err := inSession(ctx, func() (int, error) {
		return e.ExecWith(ctx, id, runtime.Stdio{Stdin: g.stdin, Stdout: g.stdout, Stderr: g.stderr}, opts.argv, so)
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus{code}
	}
	return nil
}
