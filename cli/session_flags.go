package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

// sessionFlags are exec's and enter's additions to one session.
type sessionFlags struct {
	env      []string
	sshAgent bool
}

func (f *sessionFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&f.env, "env", "e", nil, "set a variable in the session (KEY=VALUE, repeatable; the deny list still applies)")
	cmd.Flags().BoolVar(&f.sshAgent, "ssh-agent", false, "bind your SSH agent ($SSH_AUTH_SOCK) into the session, for git and ssh inside")
}

// options checks the KEY=VALUE pairs (a later KEY wins) and returns the engine's form.
func (f *sessionFlags) options() (core.SessionOptions, error) {
	o := core.SessionOptions{SSHAgent: f.sshAgent}
	for _, kv := range f.env {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return o, usageError{fmt.Errorf("--env %q: want KEY=VALUE", kv)}
		}
		if o.Env == nil {
			o.Env = map[string]string{}
		}
		o.Env[k] = v
	}
	return o, nil
}
