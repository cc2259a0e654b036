package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

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

// Pull downloads an environment from a remote store and makes it ready to enter. ref
// is a registry reference ("name@tag", or "name" for name@latest) or an env id. Every
// blob is verified while it streams and the metadata is written last; then the
// environment directory is materialized: the backend prepares it as for a build without
// packages (fetching the base image into the image cache unless it is there, which
// opts.Offline forbids), and the base layer's tar is unpacked as its writable layer,
// whiteouts and opaque directories included. All of it happens in store/staging under
// the store lock and one WAL entry, and the directory appears by one rename: a pull that
// fails or dies leaves no environment behind (its downloaded blobs stay, unreferenced,
// so a retry skips them; GC removes them otherwise). A pulled environment that was
// Running remotely arrives Built; a name already used by another local environment is
// dropped (with a warning). Pulling an environment that is already here with its
// writable layer keeps that layer (local changes survive, as a rebuild keeps them).
//
// opts is variadic so that callers without options stay short; only the first is used.
func (e *Engine) Pull(ctx context.Context, ref string, rb Remote, opts ...PullOptions) (*PullResult, error) {
	var o PullOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	id, err := remote.Resolve(ctx, rb, ref)
	if err != nil {
		return nil, classify(ErrRemote, err)
	}
	res := &PullResult{EnvID: id}
	err = e.withEnvLock(ctx, "pull", id, func() error {
		if err := e.layout.Initialize(ctx); err != nil {
			return classify(ErrStore, err)
		}
		if live, err := liveClaims(e.layout.EnvPath(id)); err != nil {
			return classify(ErrStore, err)
		} else if live > 0 {
			return &TransitionError{From: "running", To: "cannot pull over a running environment; stop it first"}
		}
		staging := filepath.Join(e.layout.StagingDir(), "pull-env-"+id.String())
		// The WAL format (the original's) has no pull kind; a pull materializes an
		// environment as a build does, and its steps say what to undo.
		op, err := e.st.walBegin(ctx, "Build", id.String(), removeDir(staging))
		if err != nil {
			return classify(ErrStore, err)
		}
		// A record this pull creates goes again if the pull fails before its commit.
		if _, err := os.Lstat(e.st.metaPath(id)); errors.Is(err, fs.ErrNotExist) {
			if err := e.st.walRemoveFile(ctx, op, e.st.metaPath(id)); err != nil {
				return e.rollback(op, classify(ErrStore, err))
			}
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
		start := time.Now()
		r, err := remote.Pull(ctx, rb, remote.NewLocal(e.st.Store, adjust), id, remote.PullOptions{})
		if err != nil {
			if ctx.Err() != nil {
				return e.rollback(op, ctx.Err())
			}
			return e.rollback(op, classify(ErrRemote, err))
		}
		res.ObjectsPulled, res.LayersPulled = r.ObjectsPulled, r.LayersPulled
		res.ObjectsSkipped, res.LayersSkipped = r.ObjectsSkipped, r.LayersSkipped
		// Where a pull's time goes: the transfer (download, verify, fsync, stage,
		// commit) and the materialization (image, unpack of the base layer) differ by
		// orders of magnitude depending on the environment (`karapace -v pull`).
		e.log.Debug("pull: blobs transferred", "env", id.Short(), "bytes", r.BytesReceived,
			"objects", r.ObjectsPulled, "layers", r.LayersPulled, "took", time.Since(start))
		start = time.Now()
		aside, err := e.materialize(ctx, op, id, staging, o)
		if err != nil {
			if ctx.Err() != nil {
				return e.rollback(op, ctx.Err())
			}
			return e.rollback(op, err)
		}
		e.log.Debug("pull: environment materialized", "env", id.Short(), "took", time.Since(start))
		if err := e.st.walCommit(ctx, op); err != nil {
			return classify(ErrStore, err)
		}
		if aside != "" {
			if err := e.layout.RemoveTree(aside); err != nil {
				e.log.Warn("remove the replaced environment directory; recovery will", "path", aside, "err", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// materialize builds a pulled environment's directory in staging and swaps it in under
// the WAL entry op. It returns the path of a replaced directory to delete after the
// commit ("" when there was none). An environment whose writable layer is already here,
// or that was never built (no base layer), is left alone.
func (e *Engine) materialize(ctx context.Context, op string, id schema.EnvID, staging string, o PullOptions) (string, error) {
	m, err := e.get(ctx, id)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(e.layout.UpperDir(id)); err == nil {
		e.log.Info("pulled environment is already here; keeping its writable layer", "env", id.Short())
		return "", nil
	}
	if m.BaseLayer == "" || m.State == Defined {
		return "", nil
	}
	base, err := schema.ParseDigest(m.BaseLayer)
	if err != nil {
		return "", classify(ErrStore, err)
	}
	l, err := e.st.layerGet(ctx, base)
	if err != nil {
		return "", classify(ErrStore, fmt.Errorf("base layer %s: %w", base.Short(), err))
	}
	tar := l.TarHash
	if tar.IsZero() && len(l.ObjectRefs) == 1 {
		tar = l.ObjectRefs[0]
	}
	if tar.IsZero() {
		return "", classify(ErrStore, fmt.Errorf("%w: base layer %s has no tar content", store.ErrNotFound, base.Short()))
	}
	spec, b, err := e.envSpec(ctx, m)
	if err != nil {
		return "", err
	}
	// The backend prepares the directory as for a build with nothing to install: the
	// image in its cache, its own scratch directories and its record of the image.
	spec.EnvDir, spec.Offline, spec.Progress, spec.Transfer = staging, o.Offline, o.Progress, o.Transfer
	spec.Manifest.SystemPackages, spec.Manifest.GUIApps, spec.Packages = []string{}, []string{}, nil
	if err := e.layout.RemoveTree(staging); err != nil {
		return "", classify(ErrStore, err)
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return "", classify(ErrStore, err)
	}
	if o.Progress != nil {
		o.Progress("preparing the environment")
	}
	if err := b.Build(ctx, spec); err != nil {
		if derr := b.Destroy(context.WithoutCancel(ctx), spec); derr != nil {
			e.log.Warn("backend cleanup after a failed pull", "err", derr)
		}
		return "", classify(ErrRuntime, err)
	}
	upper := filepath.Join(staging, "upper")
	if err := e.layout.RemoveTree(upper); err != nil {
		return "", classify(ErrStore, err)
	}
	if o.Progress != nil {
		o.Progress("unpacking the base layer")
	}
	if err := e.st.unpackObject(ctx, tar, upper); err != nil {
		return "", classify(ErrStore, fmt.Errorf("unpack base layer %s: %w", base.Short(), err))
	}
	// A directory without an upper (left by an earlier, older pull) is replaced; the
	// swap's WAL step puts it back if we die before the commit.
	aside, err := e.st.WAL.SwapDir(ctx, op, staging, e.layout.EnvPath(id))
	if err != nil {
		return "", classify(ErrStore, err)
	}
	if _, err := os.Lstat(aside); err != nil {
		aside = ""
	}
	return aside, nil
}
