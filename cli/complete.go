package cli

import (
	"context"
	"strings"

	"github.com/spf13/cobra"
)

// completeEnv completes the first argument with the store's environment names and short
// ids, so `karapace enter <TAB>` offers what exists. Errors complete nothing.
func completeEnv(g *globals) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx := cmd.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		e, err := g.engineFor(ctx, true)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		envs, err := e.List(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for i := range envs {
			env := &envs[i]
			desc := env.State.String()
			if name := env.DisplayName(); name != "" && strings.HasPrefix(name, toComplete) {
				out = append(out, cobra.CompletionWithDesc(name, desc+" "+env.ShortID))
			}
			if strings.HasPrefix(env.ShortID, toComplete) {
				out = append(out, cobra.CompletionWithDesc(env.ShortID, desc+" "+env.DisplayName()))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}
