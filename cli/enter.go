package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

type enterOptions struct {
	ref     string
	argv    []string
	session sessionFlags
}

func newEnterCommand(g *globals) *cobra.Command {
	var opts enterOptions
	cmd := &cobra.Command{
		Use:   "enter [env_id] [-- cmd...]",
		Short: "Open a shell (or run cmd) interactively in an environment",
		Long: "Start an interactive session in a built environment: a login shell, or cmd when given\n" +
			"after --. karapace exits with the session's exit status. The store lock is held only\n" +
			"while the session starts and ends, so other commands keep working meanwhile.\n" +
			"Without env_id: the environment of the karapace.toml in the current directory or the\n" +
			"nearest parent (the one its karapace.lock names).",
		// Flags go before the --; "[flags]" after the command would mislead.
		DisableFlagsInUseLine: true,
		Args:                  dashArgs(1, 0),
		ValidArgsFunction:     completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.argv = splitRef(cmd, args)
			return runEnter(cmd.Context(), g, opts)
		},
	}
	opts.session.add(cmd)
	return cmd
}

func runEnter(ctx context.Context, g *globals, opts enterOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolveOrProject(ctx, g, e, opts.ref)
	if err != nil {
		return err
	}
	// On a terminal, announce the session to the user and to terminal emulators that
	// track containers (the OSC 777 "container" push/pop sequences).
	if g.isTTY(g.stderr) {
		if n, err := e.Manifest(ctx, id); err == nil {
			name := ""
			if env, err := e.Inspect(ctx, id); err == nil {
				name = env.DisplayName()
			}
			fmt.Fprint(g.stderr, enterBanner(id.String(), name, n.BaseImage))
			defer fmt.Fprint(g.stderr, exitBanner(id.Short()))
		}
	}
	so, err := opts.session.options()
	if err != nil {
		return err
	}
	code, err := inSession(ctx, func() (int, error) {
		return e.EnterWith(ctx, id, runtime.Stdio{Stdin: g.stdin, Stdout: g.stdout, Stderr: g.stderr}, opts.argv, so)
	})
	if err != nil {
		return err
	}
	if code != 0 {
		return exitStatus{code}
	}
	return nil
}

// dashArgs validates `[<positional...>] [-- argv...]`: at most before positional
// arguments before the dash (none means the current project's environment), and at
// least after arguments after it (a dash is then required).
func dashArgs(before, after int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		dash := cmd.ArgsLenAtDash()
		n := len(args)
		if dash >= 0 {
			n = dash
		}
		if n > before {
			return usageError{fmt.Errorf("%s takes at most %d argument(s) before --, got %d", cmd.Name(), before, n)}
		}
		if after > 0 && (dash < 0 || len(args)-dash < after) {
			return usageError{fmt.Errorf("%s needs a command after --, as in: karapace %s <env_id> -- <cmd> [args]", cmd.Name(), cmd.Name())}
		}
		return nil
	}
}

// splitRef splits `[ref] [-- argv...]` into the reference ("" when there is none
// before the dash) and the command.
func splitRef(cmd *cobra.Command, args []string) (string, []string) {
	if cmd.ArgsLenAtDash() == 0 || len(args) == 0 {
		return "", args
	}
	return args[0], args[1:]
}

// resolveOrProject resolves ref, or without one finds the environment of the
// manifest in the current directory or its parents, warning on stderr when the
// manifest changed since that environment was built.
func resolveOrProject(ctx context.Context, g *globals, e *core.Engine, ref string) (schema.EnvID, error) {
	if ref != "" {
		return resolve(ctx, e, ref, true)
	}
	p, err := e.FindProject(ctx, ".")
	if err != nil {
		return schema.EnvID{}, err
	}
	if p.Drift != nil {
		fmt.Fprintf(g.stderr, "warning: %s changed since %s was built (karapace build to update it): %v\n", p.Manifest, p.EnvID.Short(), p.Drift)
	}
	return p.EnvID, nil
}

// enterBanner is the OSC push and the line enter writes before the session, byte for
// byte as the original writes it; a named environment (name != "") shows its name
// first, as the prompt inside does, then the image and short id.
func enterBanner(envID, name, baseImage string) string {
	short := envID[:12]
	host := "karapace-" + short
	what := "\x1b[1m" + baseImage + "\x1b[0m (" + short + ")"
	if name != "" {
		what = "\x1b[1m" + name + "\x1b[0m (" + baseImage + ", " + short + ")"
	}
	return "\x1b]777;container;push;" + host + ";karapace;" + envID + "\x1b\\" +
		"\x1b[1;36m[karapace]\x1b[0m entering " + what + " as \x1b[1m" + host + "\x1b[0m\n"
}

// exitBanner is the OSC pop and the line enter writes after the session.
func exitBanner(short string) string {
	return "\x1b]777;container;pop;;\x1b\\" + "\x1b[1;36m[karapace]\x1b[0m exited environment " + short + "\n"
}
