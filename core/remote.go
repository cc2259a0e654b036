package core

import (
	"context"
	"fmt"

	"github.com/karapace/karapace/schema"
)

// Remote is the remote store Push and Pull talk to: a remote.Backend (the HTTP client
// or an in-memory store). It is declared here as an alias so that frontends compile
// while the remote module lands; pass a remote.Backend.
type Remote = any

// Push uploads an environment (metadata, layers, objects) to a remote store and, with a
// tag, publishes it in the remote registry.
func (e *Engine) Push(ctx context.Context, id schema.EnvID, rb Remote, opts PushOptions) (*PushResult, error) {
	return nil, classify(ErrRemote, fmt.Errorf("push: %w yet", ErrNotImplemented))
}

// Pull downloads an environment from a remote store. ref is a registry reference
// (name@tag) or an env id.
func (e *Engine) Pull(ctx context.Context, ref string, rb Remote) (*PullResult, error) {
	return nil, classify(ErrRemote, fmt.Errorf("pull: %w yet", ErrNotImplemented))
}
