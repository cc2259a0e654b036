package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// Version is the version printed by `karapace --version`; the Makefile sets it at link time.
var Version = "0.1.0-dev"

// defaultStoreSuffix is where the store lives under $HOME when neither --store nor
// KARAPACE_STORE says otherwise.
const defaultStoreSuffix = ".local/share/karapace"

// globals holds what every command shares: the injected streams and environment, the
// global flags, and the seams tests replace.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	// isTTY reports whether a stream is an interactive terminal; nil means "never".
	isTTY func(any) bool

	// Global flags.
	storeFlag   string
	json        bool
	verbose     bool
	trace       bool
	lockTimeout time.Duration

	log *slog.Logger

	mu     sync.Mutex
	active *spinner // the spinner on stderr, if any, for notices
	// started is set once a command's own code runs: an error before that is a usage
	// error (exit 2, as the original's clap), after it an ordinary failure.
	started bool
}

// newRootCommand builds the whole command tree. Global flags are persistent, so they are
// accepted before or after the command name.
func newRootCommand(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:           "karapace",
		Short:         "Deterministic environment engine for immutable systems",
		Long:          "Karapace builds reproducible, content-addressed development environments from a\ndeclarative TOML manifest, rootless and daemonless.",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Commands only run through a subcommand; plain `karapace` prints help.
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.lockTimeout < 0 {
				return usageError{fmt.Errorf("--lock-timeout must not be negative (0 waits forever)")}
			}
			g.started = true
			g.log = newLogger(g.stderr, logLevel(g))
			return nil
		},
	}
	root.SetVersionTemplate("karapace {{.Version}}\n")
	root.SetIn(g.stdin)
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	root.Flags().BoolP("version", "V", false, "print the version")
	pf := root.PersistentFlags()
	pf.StringVar(&g.storeFlag, "store", "", "store directory (default $KARAPACE_STORE, else ~/"+defaultStoreSuffix+")")
	pf.BoolVar(&g.json, "json", false, "print one JSON document on stdout")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "verbose logging (debug level) on stderr")
	pf.BoolVar(&g.trace, "trace", false, "trace logging on stderr (overrides -v)")
	pf.DurationVar(&g.lockTimeout, "lock-timeout", 0, "give up waiting for the store lock after this long (0: wait forever)")

	root.AddGroup(
		&cobra.Group{ID: "env", Title: "Environments:"},
		&cobra.Group{ID: "store", Title: "Store and remote:"},
		&cobra.Group{ID: "tools", Title: "Tools:"},
	)
	add := func(group string, cmds ...*cobra.Command) {
		for _, c := range cmds {
			c.GroupID = group
			root.AddCommand(c)
		}
	}
	add("env",
		newNewCommand(g), newBuildCommand(g), newRebuildCommand(g), newPinCommand(g),
		newEnterCommand(g), newExecCommand(g), newStopCommand(g), newDestroyCommand(g),
		newFreezeCommand(g), newUnfreezeCommand(g), newArchiveCommand(g), newListCommand(g), newInspectCommand(g),
		newDiffCommand(g), newSnapshotsCommand(g), newCommitCommand(g), newRestoreCommand(g),
		newRenameCommand(g), newExportAppCommand(g), newUnexportAppCommand(g),
	)
	add("store",
		newGCCommand(g), newVerifyStoreCommand(g), newPushCommand(g), newPullCommand(g),
		newMigrateCommand(g), newImagesCommand(g),
	)
	add("tools",
		newCompletionsCommand(g), newManPagesCommand(g), newTUICommand(g), newDoctorCommand(g),
		newUnshareCommand(g),
	)
	root.SetHelpCommandGroupID("tools")
	root.SetCompletionCommandGroupID("tools")
	// `completions` replaces cobra's default `completion` command.
	root.CompletionOptions.DisableDefaultCmd = true
	return root
}

// storePath resolves the store root: --store, else $KARAPACE_STORE, else
// ~/.local/share/karapace. A leading "~/" expands to $HOME. Without $HOME there is no
// default, rather than a directory literally named "~".
func (g *globals) storePath() (string, error) {
	p := g.storeFlag
	if p == "" {
		p = g.getenv("KARAPACE_STORE")
	}
	home := g.getenv("HOME")
	if p == "" {
		if home == "" {
			return "", errors.New("no store: HOME is not set; pass --store or set KARAPACE_STORE")
		}
		return filepath.Join(home, defaultStoreSuffix), nil
	}
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home == "" {
			return "", fmt.Errorf("store %q: HOME is not set to expand ~", p)
		}
		return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
	}
	return p, nil
}

// Main runs the karapace command line with args (without the program name) and returns
// the process exit code.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return run(ctx, &globals{
		stdin:  stdin,
		stdout: stdout,
		stderr: stderr,
		getenv: os.Getenv,
		isTTY:  isTerminal,
	}, args)
}

func run(ctx context.Context, g *globals, args []string) int {
	if g.getenv == nil {
		g.getenv = func(string) string { return "" }
	}
	if g.isTTY == nil {
		g.isTTY = func(any) bool { return false }
	}
	g.log = newLogger(g.stderr, slog.LevelWarn)
	root := newRootCommand(g)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil && !g.started {
		var st exitStatus
		if !errors.As(err, &st) {
			err = usageError{err}
		}
	}
	code := exitCode(ctx, err)
	msg := errorMessage(err)
	if code == exitCancelled && errors.Is(err, context.Canceled) {
		// "context canceled" tells a user nothing; the cause stays in the debug log.
		g.log.Debug("command cancelled", "err", err)
		msg = "interrupted; the command stopped and rolled back what it had begun"
	}
	if msg != "" {
		fmt.Fprintf(g.stderr, "error: %s\n", msg)
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintln(g.stderr, "Run 'karapace --help' for usage.")
		}
	}
	return code
}
