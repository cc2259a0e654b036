package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Diff reports what changed in an environment since it was built: files added,
// modified and removed (overlay whiteouts included) relative to its base layer, the
// writable layer as the build left it. Empty mount points a session's launcher made are
// not changes. A record without a base layer with content (one the original wrote before
// tar content existed) is compared with the image, as the original does. It never
// follows symlinks and takes no lock.
func (e *Engine) Diff(ctx context.Context, id schema.EnvID) (*Drift, error) {
	env, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	built, ok, err := e.builtTree(ctx, env)
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	var a, m, r []string
	if ok {
		a, m, r, err = e.diffBuilt(ctx, env, built)
	} else {
		a, m, r, err = diffTrees(ctx, e.layout.UpperDir(id), e.layout.LowerDir(id))
	}
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	return &Drift{EnvID: id, Added: a, Modified: m, Removed: r, HasDrift: len(a)+len(m)+len(r) > 0}, nil
}

// snapshotID is the original's snapshot identity.
func snapshotID(id schema.EnvID, base string, tar schema.Digest) schema.Digest {
	return schema.SumString("snapshot:" + id.String() + ":" + base + ":" + tar.String())
}

// Commit snapshots the writable layer of a Built or Frozen environment and returns the
// snapshot's key (what Restore takes). Committing unchanged content gives the same key.
// opts may give a message, kept with the snapshot's time (see CommitOptions).
func (e *Engine) Commit(ctx context.Context, id schema.EnvID, opts ...CommitOptions) (schema.Digest, error) {
	var o CommitOptions
	for _, x := range opts {
		o = x
	}
	var key schema.Digest
	err := e.withEnvLock(ctx, "commit", id, func() error {
		m, err := e.get(ctx, id)
		if err != nil {
			return err
		}
		if m.State != Built && m.State != Frozen {
			return &TransitionError{From: m.State.String(), To: "commit requires built or frozen state"}
		}
		upper := e.layout.UpperDir(id)
		if _, err := os.Lstat(upper); errors.Is(err, fs.ErrNotExist) {
			return notFound("no overlay upper directory for " + id.String())
		}
		op, err := e.st.walBegin(ctx, "Commit", id.String())
		if err != nil {
			return classify(ErrStore, err)
		}
		// PutTree reads an unchanged tree once and rewrites nothing.
		tar, err := e.st.objects.PutTree(ctx, upper, e.st.log)
		if err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		parent, err := digestOrZero(m.BaseLayer)
		if err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		l := store.Layer{
			Hash: snapshotID(id, m.BaseLayer, tar), Kind: store.KindSnapshot, Parent: parent,
			ObjectRefs: []schema.Digest{tar}, ReadOnly: true, TarHash: tar,
		}
		key, err = e.st.layerKey(l)
		if err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		// Only a layer this commit creates may be rolled back: an identical earlier
		// snapshot must survive a crash of this one.
		if !e.st.layerExists(ctx, key) {
			if err := e.st.walRemoveFile(ctx, op, e.st.layerPath(key)); err != nil {
				return e.rollback(op, classify(ErrStore, err))
			}
		}
		if _, err := e.st.layerPut(ctx, l); err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		if err := e.writeNote(id, key, o.Message); err != nil {
			return e.rollback(op, classify(ErrStore, fmt.Errorf("record the snapshot's note: %w", err)))
		}
		return classify(ErrStore, e.st.walCommit(ctx, op))
	})
	return key, err
}

// Restore replaces the writable layer of a Built or Frozen environment with a snapshot
// of that same environment. The swap is crash-safe: the snapshot is unpacked into
// staging, then upper is renamed aside (upper.swap-old) and staging renamed to upper,
// under a WAL entry whose Rename step puts the old upper back if we die before the
// commit; the aside copy is deleted after it. At every point one complete layer is on
// disk.
func (e *Engine) Restore(ctx context.Context, id schema.EnvID, snapshot schema.Digest) error {
	return e.withEnvLock(ctx, "restore", id, func() error {
		m, err := e.get(ctx, id)
		if err != nil {
			return err
		}
		if m.State != Built && m.State != Frozen {
			return &TransitionError{From: m.State.String(), To: "restore requires built or frozen state"}
		}
		envDir := e.layout.EnvPath(id)
		if live, err := liveClaims(envDir); err != nil {
			return classify(ErrStore, err)
		} else if live > 0 {
			return &TransitionError{From: "running", To: "restore requires no live session"}
		}
		// A kept root still shows the old upper; it must not outlive the swap.
		if spec, b, err := e.envSpec(ctx, m); err == nil {
			if err := releaseKept(ctx, b, spec); err != nil {
				return classify(ErrRuntime, err)
			}
		}
		l, err := e.st.layerGet(ctx, snapshot)
		if err != nil {
			return classify(ErrStore, fmt.Errorf("snapshot %s: %w", snapshot, err))
		}
		if l.Kind != store.KindSnapshot {
			return &TransitionError{From: string(l.Kind), To: "restore requires a Snapshot layer"}
		}
		if l.Parent.IsZero() || l.Parent.String() != m.BaseLayer {
			return &TransitionError{From: "snapshot of another environment", To: "restore requires a snapshot of this environment"}
		}
		tar := l.TarHash
		if tar.IsZero() {
			return classify(ErrStore, fmt.Errorf("%w: snapshot %s has no tar content (legacy layer)", store.ErrNotFound, snapshot))
		}
		staging := filepath.Join(e.layout.StagingDir(), "restore-"+id.String())
		upper := e.layout.UpperDir(id)
		op, err := e.st.walBegin(ctx, "Restore", id.String(), removeDir(staging))
		if err != nil {
			return classify(ErrStore, err)
		}
		if err := e.layout.RemoveTree(staging); err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		if err := e.st.unpackObject(ctx, tar, staging); err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		// Fix of spec 5.5: upper is moved aside, never deleted before the new one is
		// in place; a crash before the commit renames it back.
		aside, err := e.st.WAL.SwapDir(ctx, op, staging, upper)
		if err != nil {
			return e.rollback(op, classify(ErrStore, err))
		}
		if err := e.st.walCommit(ctx, op); err != nil {
			return classify(ErrStore, err)
		}
		if err := e.layout.RemoveTree(aside); err != nil {
			e.log.Warn("remove the replaced upper directory; recovery will", "path", aside, "err", err)
		}
		return nil
	})
}

// Snapshots lists an environment's snapshots, sorted by snapshot id, with their time,
// size (of the tar) and message.
func (e *Engine) Snapshots(ctx context.Context, id schema.EnvID) ([]Snapshot, error) {
	m, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	keys, err := e.st.layerList(ctx)
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	out := []Snapshot{}
	for _, k := range keys {
		l, err := e.st.layerGet(ctx, k)
		if err != nil || l.Kind != store.KindSnapshot || l.Parent.IsZero() || l.Parent.String() != m.BaseLayer {
			continue
		}
		s := Snapshot{ID: l.Hash, Key: k, TarHash: l.TarHash, Parent: l.Parent.String()}
		e.describe(ctx, id, &s)
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID.String() < out[j].ID.String() })
	return out, nil
}
