package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

type completionsOptions struct {
	shell string
}

func newCompletionsCommand(g *globals) *cobra.Command {
	var opts completionsOptions
	return &cobra.Command{
		Use:       "completions <bash|zsh|fish|powershell>",
		Short:     "Print a shell completion script",
		Long:      "Print the completion script for the given shell on stdout.\n\n  bash:  source <(karapace completions bash)\n  zsh:   karapace completions zsh > \"${fpath[1]}/_karapace\"\n  fish:  karapace completions fish > ~/.config/fish/completions/karapace.fish",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish", "powershell"},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.shell = args[0]
			return runCompletions(cmd.Context(), opts, cmd.Root(), g.stdout)
		},
	}
}

func runCompletions(_ context.Context, opts completionsOptions, root *cobra.Command, w io.Writer) error {
	switch opts.shell {
	case "bash":
		return root.GenBashCompletionV2(w, true)
	case "zsh":
		return root.GenZshCompletion(w)
	case "fish":
		return root.GenFishCompletion(w, true)
	case "powershell":
		return root.GenPowerShellCompletionWithDesc(w)
	}
	return usageError{fmt.Errorf("unsupported shell %q (expected: bash, zsh, fish, powershell)", opts.shell)}
}
