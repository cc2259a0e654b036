package cli

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/runtime/namespace"
	"github.com/karapace/karapace/runtime/oci"
	"github.com/karapace/karapace/schema"
)

// backends is the explicit backend registry handed to the Engine: the manifest's
// `[runtime] backend` name to a constructor. Nothing registers itself.
func (g *globals) backends() map[string]func() runtime.Backend {
	var mockOpts mock.Options
	// A test seam for the end-to-end tests: a slow mock build to interrupt or to
	// collide with. Only the mock backend reads it.
	if d, err := time.ParseDuration(g.getenv("KARAPACE_MOCK_BUILD_DELAY")); err == nil && d > 0 {
		mockOpts.BuildDelay = d
	}
	return map[string]func() runtime.Backend{
		mock.Name:   func() runtime.Backend { return mock.New(mockOpts) },
		"namespace": func() runtime.Backend { return namespace.New(namespace.BackendOptions{Logger: g.log}) },
		"oci":       func() runtime.Backend { return oci.New(oci.Options{Logger: g.log}) },
	}
}

// engineFor builds an Engine on the store for one command. Every command, read-only
// ones included, gets core.New's recovery when the store lock is free, and its refusal
// of a store of another format version (gc or destroy on a newer store could remove
// what the newer format needs). Only migrate and doctor look at such a store (through
// openEngine). readOnly says what the command does; the Engine needs no telling.
func (g *globals) engineFor(ctx context.Context, readOnly bool) (*core.Engine, error) {
	return g.newEngine(ctx, false)
}

// openEngine builds an Engine that opens a store of any format version.
func (g *globals) openEngine(ctx context.Context, readOnly bool) (*core.Engine, error) {
	return g.newEngine(ctx, true)
}

func (g *globals) newEngine(ctx context.Context, anyFormat bool) (*core.Engine, error) {
	root, err := g.storePath()
	if err != nil {
		return nil, err
	}
	// Exported app launchers run this very binary, not whatever `karapace` PATH finds.
	self, _ := os.Executable()
	return core.New(ctx, core.Options{
		StoreRoot:   root,
		Executable:  self,
		Backends:    g.backends(),
		Logger:      g.log,
		LockTimeout: g.lockTimeout,
		AnyFormat:   anyFormat,
		OnLockWait:  func(w core.LockWait) { g.notice(w.String()) },
		RemoveTree:  namespace.RemoveTree,
	})
}

// resolve turns the user's reference into an environment id. Failures come back with
// the candidates the user may have meant (pretty) or as the bare message (plain, for
// the --json paths, as the original).
func resolve(ctx context.Context, e *core.Engine, ref string, pretty bool) (schema.EnvID, error) {
	id, err := e.Resolve(ctx, ref)
	if err == nil {
		return id, nil
	}
	var amb *core.AmbiguousError
	switch {
	case errors.As(err, &amb):
		re := &resolveError{class: errAmbiguous, input: ref, count: len(amb.Candidates), wrapped: err}
		if pretty {
			for i, c := range amb.Candidates {
				if i == 10 {
					break
				}
				re.candidates = append(re.candidates, refOf(&c))
			}
		}
		return id, re
	case errors.Is(err, core.ErrNotFound), errors.Is(err, core.ErrInvalidRef):
		re := &resolveError{class: errNoEnv, input: ref, wrapped: err}
		if pretty {
			if envs, lerr := e.List(ctx); lerr == nil {
				refs := make([]envRef, 0, len(envs))
				for i := range envs {
					refs = append(refs, refOf(&envs[i]))
				}
				re.candidates = suggestions(refs, ref)
			}
		}
		return id, re
	}
	return id, err
}

func refOf(e *core.Env) envRef {
	return envRef{EnvID: e.EnvID.String(), ShortID: e.ShortID, Name: e.DisplayName(), State: e.State.String()}
}
