package cli

import (
	"fmt"

	"github.com/karapace/karapace/core"
)

// errRemoteUnavailable is returned by push and pull until the remote store client is
// wired in.
var errRemoteUnavailable = fmt.Errorf("%w: remote error: the remote store client is not available yet in this build of karapace", core.ErrNotImplemented)

// remoteBackend builds the remote store client from --remote (or the configured remote,
// $XDG_CONFIG_HOME/karapace/remote.json).
func (g *globals) remoteBackend(urlFlag string) (core.Remote, error) {
	return nil, errRemoteUnavailable
}
