package tui

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// inspector reads what the Engine's API does not return (the stored manifest, layer
// manifests, object and directory sizes) straight from the store, read-only and
// without the store lock: every file it reads is content-addressed or written
// atomically, so a concurrent writer can only make it see the old or the new version.
type inspector struct {
	layout  store.Layout
	objects *store.Objects
	layers  *store.Layers

	mu        sync.Mutex
	manifests map[string]*schema.Normalized // by manifest hash: immutable
	sizes     map[sizeKey]int64

	listing string // the last listing of the metadata records, see stamp
}

// sizeKey caches a directory size until the environment's metadata changes.
type sizeKey struct{ id, updated string }

func newInspector(root string) *inspector {
	l := store.NewLayout(root)
	return &inspector{
		layout: l, objects: store.NewObjects(l), layers: store.NewLayers(l),
		manifests: map[string]*schema.Normalized{}, sizes: map[sizeKey]int64{},
	}
}

func (in *inspector) manifest(ctx context.Context, hash string) (*schema.Normalized, error) {
	in.mu.Lock()
	n, ok := in.manifests[hash]
	in.mu.Unlock()
	if ok {
		return n, nil
	}
	d, err := schema.ParseDigest(hash)
	if err != nil {
		return nil, fmt.Errorf("manifest hash: %w", err)
	}
	b, err := in.objects.Get(ctx, d)
	if err != nil {
		return nil, err
	}
	n, err = schema.DecodeNormalized(b)
	if err != nil {
		return nil, err
	}
	in.mu.Lock()
	in.manifests[hash] = n
	in.mu.Unlock()
	return n, nil
}

// backend is the runtime backend an environment's manifest names, or "?".
func (in *inspector) backend(ctx context.Context, e *core.Env) string {
	n, err := in.manifest(ctx, e.ManifestHash)
	if err != nil || n.RuntimeBackend == "" {
		return "?"
	}
	return n.RuntimeBackend
}

// cachedSize returns the cached size of an environment's directory, or -1.
func (in *inspector) cachedSize(e *core.Env) int64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	if n, ok := in.sizes[sizeKey{e.EnvID.String(), e.UpdatedAt}]; ok {
		return n
	}
	return -1
}

// size measures an environment's directory (its writable layer and whatever its
// backend keeps there) and caches the result.
func (in *inspector) size(ctx context.Context, e *core.Env) int64 {
	n, err := dirSize(ctx, in.layout.EnvPath(e.EnvID))
	if err != nil {
		return -1
	}
	in.mu.Lock()
	in.sizes[sizeKey{e.EnvID.String(), e.UpdatedAt}] = n
	in.mu.Unlock()
	return n
}

func (in *inspector) forgetSizes() {
	in.mu.Lock()
	in.sizes = map[sizeKey]int64{}
	in.mu.Unlock()
}

// dirSize adds up the allocated size of every file under dir, counting hard-linked
// files once. It never follows symlinks. A missing directory is 0.
func dirSize(ctx context.Context, dir string) (int64, error) {
	var total int64
	seen := map[uint64]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
				return nil
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok {
			if st.Nlink > 1 && !d.IsDir() {
				if seen[st.Ino] {
					return nil
				}
				seen[st.Ino] = true
			}
			total += st.Blocks * 512
			return nil
		}
		total += info.Size()
		return nil
	})
	return total, err
}

// layerInfo is one of an environment's layers as the detail view shows it.
type layerInfo struct {
	role string // "base", "dependency", "policy"
	hash string
	kind string
	size int64 // of its content object, -1 when unknown
	err  error
}

// detail is everything the detail view shows about one environment.
type detail struct {
	env         core.Env
	manifest    *schema.Normalized
	manifestErr error
	layers      []layerInfo
	snapshots   []core.Snapshot
	snapErr     error
	drift       *core.Drift
	driftErr    error
	size        int64
	err         error // the environment itself could not be read
}

func (in *inspector) layer(ctx context.Context, role, hash string) layerInfo {
	li := layerInfo{role: role, hash: hash, size: -1}
	d, err := schema.ParseDigest(hash)
	if err != nil {
		li.err = err
		return li
	}
	l, err := in.layers.Get(ctx, d)
	if err != nil {
		li.err = err
		return li
	}
	li.kind = string(l.Kind)
	if !l.TarHash.IsZero() {
		if n, err := in.objects.Size(ctx, l.TarHash); err == nil {
			li.size = n
		}
	}
	return li
}

// loadDetail gathers an environment's detail. It takes no lock.
func loadDetail(ctx context.Context, eng *core.Engine, in *inspector, id schema.EnvID) *detail {
	e, err := eng.Inspect(ctx, id)
	if err != nil {
		return &detail{err: err}
	}
	d := &detail{env: *e}
	d.manifest, d.manifestErr = in.manifest(ctx, e.ManifestHash)
	if e.BaseLayer != "" {
		d.layers = append(d.layers, in.layer(ctx, "base", e.BaseLayer))
	}
	for _, h := range e.DependencyLayers {
		d.layers = append(d.layers, in.layer(ctx, "dependency", h))
	}
	if e.PolicyLayer != nil {
		d.layers = append(d.layers, in.layer(ctx, "policy", *e.PolicyLayer))
	}
	d.snapshots, d.snapErr = eng.Snapshots(ctx, id)
	d.drift, d.driftErr = eng.Diff(ctx, id)
	d.size = in.size(ctx, e)
	return d
}

// stamp summarizes what the list and detail views depend on: the metadata directory
// (every record is written by a rename into it, which updates its modification time)
// and the layers directory (commits). A directory's time is kept at the kernel's clock
// tick, so two changes within one tick could look like one; while the directory changed
// within the last two seconds the stamp also lists every record (name, inode, size,
// time: a replaced record always has a new inode). Otherwise a check costs two stats.
// Only the watch goroutine calls it (run calls it once before starting that goroutine).
func (in *inspector) stamp() string {
	var b strings.Builder
	info, err := os.Stat(in.layout.MetadataDir())
	if err != nil {
		b.WriteString("no-metadata;")
		in.listing = ""
	} else {
		fmt.Fprintf(&b, "meta:%d:%d;", inode(info), info.ModTime().UnixNano())
		if time.Since(info.ModTime()) < 2*time.Second {
			in.listing = in.list()
		}
		b.WriteString(in.listing)
	}
	if info, err := os.Stat(in.layout.LayersDir()); err == nil {
		fmt.Fprintf(&b, "layers:%d:%d", inode(info), info.ModTime().UnixNano())
	}
	return b.String()
}

// list describes every metadata record.
func (in *inspector) list() string {
	ents, err := os.ReadDir(in.layout.MetadataDir())
	if err != nil {
		return "unreadable;"
	}
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			continue
		}
		names = append(names, fmt.Sprintf("%s:%d:%d:%d;", e.Name(), inode(info), info.Size(), info.ModTime().UnixNano()))
	}
	sort.Strings(names)
	return strings.Join(names, "")
}

func inode(info fs.FileInfo) uint64 {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}
