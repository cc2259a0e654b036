package core

import (
	"context"
	"fmt"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Remote is the remote store Push and Pull talk to: the HTTP client or an in-memory
// store.
type Remote = remote.Backend

// Push uploads an environment (its objects, layers and metadata, in that order) to a
// remote store and, with a tag ("name@tag", or "name" for name@latest), publishes it in
// the remote registry. It takes no lock: it only reads the store, and a blob removed
// under it (by GC) fails the push cleanly.
func (e *Engine) Push(ctx context.Context, id schema.EnvID, rb Remote, opts PushOptions) (*PushResult, error) {
	if _, err := e.get(ctx, id); err != nil {
		return nil, err
	}
	po := remote.PushOptions{Now: e.now}
	res := &PushResult{EnvID: id}
	if opts.Tag != "" {
		ref, err := remote.ParseRef(opts.Tag)
		if err != nil {
			return nil, classify(ErrRemote, err)
		}
		po.Tag = &ref
		res.Tag = ref.String()
	}
	if opts.Progress != nil {
		po.Progress = func(ev remote.Event) {
			if ev.Done || ev.Skipped {
				verb := "sent"
				if ev.Skipped {
					verb = "skipped"
				}
				opts.Progress(fmt.Sprintf("%s %s %s", verb, ev.Kind, shortKey(ev.Key)))
			}
		}
	}
	r, err := remote.Push(ctx, remote.NewLocal(e.st.Store, nil), rb, id, po)
	if err != nil {
		return nil, classify(ErrRemote, err)
	}
	res.ObjectsPushed, res.LayersPushed = r.ObjectsPushed, r.LayersPushed
	res.ObjectsSkipped, res.LayersSkipped = r.ObjectsSkipped, r.LayersSkipped
	return res, nil
}

func shortKey(k string) string {
	if len(k) > 12 {
		return k[:12]
	}
	return k
}

// Pull downloads an environment from a remote store. ref is a registry reference
// ("name@tag", or "name" for name@latest) or an env id. Every blob is verified while
// it streams and the metadata is written last, under the store lock, so a failed pull
// leaves no environment behind. A pulled environment that was Running remotely arrives
// Built; a name already used by another local environment is dropped (with a warning).
func (e *Engine) Pull(ctx context.Context, ref string, rb Remote) (*PullResult, error) {
	id, err := remote.Resolve(ctx, rb, ref)
	if err != nil {
		return nil, classify(ErrRemote, err)
	}
	res := &PullResult{EnvID: id}
	err = e.withLock(ctx, "pull", func() error {
		if err := e.layout.Initialize(ctx); err != nil {
			return classify(ErrStore, err)
		}
		if live, err := liveClaims(e.layout.EnvPath(id)); err != nil {
			return classify(ErrStore, err)
		} else if live > 0 {
			return &TransitionError{From: "running", To: "cannot pull over a running environment; stop it first"}
		}
		adjust := func(m *store.Metadata) error {
			if m.State == store.StateRunning {
				m.State = store.StateBuilt
			}
			if m.Name != "" {
				if err := e.st.checkNameFree(ctx, m.Name, m.EnvID); err != nil {
					e.log.Warn("pulled environment's name is taken here; dropping it", "name", m.Name, "err", err)
					m.Name = ""
				}
			}
			return nil
		}
		r, err := remote.Pull(ctx, rb, remote.NewLocal(e.st.Store, adjust), id, remote.PullOptions{})
		if err != nil {
			return classify(ErrRemote, err)
		}
		res.ObjectsPulled, res.LayersPulled = r.ObjectsPulled, r.LayersPulled
		res.ObjectsSkipped, res.LayersSkipped = r.ObjectsSkipped, r.LayersSkipped
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}
