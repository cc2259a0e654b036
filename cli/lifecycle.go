package cli

import (
	"context"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

// lifecycleResult is the `--json` shape of destroy, stop, freeze and archive (the
// original printed text only; with --json we keep stdout one JSON document).
type lifecycleResult struct {
	EnvID  string `json:"env_id"`
	Status string `json:"status"`
}

// lifecycleOptions describe one of the simple state changes.
type lifecycleOptions struct {
	ref    string
	json   bool
	status string // "destroyed", "stopped", "frozen", "archived"
	// readOnly engines skip WAL recovery: stop must work while another command holds
	// the store lock.
	readOnly bool
	apply    func(ctx context.Context, e *core.Engine, id schema.EnvID) error
}

// runLifecycle resolves the reference, applies the change and prints
// "<status> environment <input>", the user's input as the original does.
func runLifecycle(ctx context.Context, g *globals, opts lifecycleOptions) error {
	e, err := g.engineFor(ctx, opts.readOnly)
	if err != nil {
		return err
	}
	id, err := resolve(ctx, e, opts.ref, true)
	if err != nil {
		return err
	}
	if err := opts.apply(ctx, e, id); err != nil {
		return err
	}
	if opts.json {
		return writeJSON(g.stdout, lifecycleResult{EnvID: id.String(), Status: opts.status})
	}
	return printf(g.stdout, "%s environment %s\n", opts.status, opts.ref)
}
