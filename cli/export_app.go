package cli

import (
	"context"

	"github.com/spf13/cobra"
)

type exportAppOptions struct {
	ref     string
	name    string
	command []string
	json    bool
}

// exportAppResult is the `--json` shape of export-app.
type exportAppResult struct {
	EnvID    string   `json:"env_id"`
	Name     string   `json:"name"`
	Command  []string `json:"command"`
	Launcher string   `json:"launcher"`
	Desktop  string   `json:"desktop"`
}

func newExportAppCommand(g *globals) *cobra.Command {
	var opts exportAppOptions
	cmd := &cobra.Command{
		Use:   "export-app <env_id> <name> <command> [args...]",
		Short: "Put a command of an environment on the host's desktop and PATH",
		Long: "Write a launcher ~/.local/bin/<name> that runs the command in the environment, and a\n" +
			"desktop entry for it ($XDG_DATA_HOME/applications). Arguments given to the launcher\n" +
			"are passed on. `[gui] apps` are exported this way on build.",
		Args:              cobra.MinimumNArgs(3),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.name, opts.command, opts.json = args[0], args[1], args[2:], g.json
			return runExportApp(cmd.Context(), g, opts)
		},
	}
	// Everything after the command name belongs to the command, flags included.
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func runExportApp(ctx context.Context, g *globals, opts exportAppOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, true)
	if err != nil {
		return err
	}
	x, err := e.ExportApp(ctx, id, opts.name, opts.command)
	if err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, exportAppResult{EnvID: id.String(), Name: opts.name, Command: opts.command, Launcher: x.Launcher, Desktop: x.Desktop})
	}
	return printf(g.stdout, "exported '%s' from %s\n  launcher: %s\n  desktop entry: %s\n", opts.name, id.Short(), x.Launcher, x.Desktop)
}

type unexportAppOptions struct {
	ref  string
	name string
	json bool
}

// unexportAppResult is the `--json` shape of unexport-app.
type unexportAppResult struct {
	EnvID  string `json:"env_id"`
	Name   string `json:"name"`
	Status string `json:"status"`
}

func newUnexportAppCommand(g *globals) *cobra.Command {
	var opts unexportAppOptions
	return &cobra.Command{
		Use:               "unexport-app <env_id> <name>",
		Short:             "Remove a launcher and desktop entry written by export-app",
		Args:              cobra.ExactArgs(2),
		ValidArgsFunction: completeEnv(g),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ref, opts.name, opts.json = args[0], args[1], g.json
			return runUnexportApp(cmd.Context(), g, opts)
		},
	}
}

func runUnexportApp(ctx context.Context, g *globals, opts unexportAppOptions) error {
	e, err := g.engineFor(ctx, false)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, true)
	if err != nil {
		return err
	}
	if err := e.UnexportApp(ctx, id, opts.name); err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, unexportAppResult{EnvID: id.String(), Name: opts.name, Status: "unexported"})
	}
	return printf(g.stdout, "removed '%s' of %s\n", opts.name, id.Short())
}
