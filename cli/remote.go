package cli

import (
	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/remote"
)

// remoteBackend builds the remote store client from --remote, or the configured remote
// ($XDG_CONFIG_HOME/karapace/remote.json, else ~/.config/karapace/remote.json); the
// configured token is sent only to the configured URL.
func (g *globals) remoteBackend(urlFlag string) (core.Remote, error) {
	c, err := remote.ResolveConfig(urlFlag, g.getenv)
	if err != nil {
		return nil, err
	}
	return remote.NewHTTP(c, remote.HTTPOptions{Logger: g.log})
}
