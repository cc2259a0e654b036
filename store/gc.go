package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/karapace/karapace/schema"
)

// GraphEnv is an environment as GC and the reference check see it. Zero digests name
// nothing (no base layer yet, no policy, no manifest).
type GraphEnv struct {
	ID           schema.EnvID
	State        State
	RefCount     uint32
	Manifest     schema.Digest   // the manifest object
	Base         schema.Digest   // layer content hashes from here on
	Dependencies []schema.Digest // zero digests are skipped
	Policy       schema.Digest
}

// GraphLayer is a layer as GC and the reference check see it. A layer that is stored
// but could not be read (only Verify builds such a graph) has no kind and no references.
type GraphLayer struct {
	Kind    LayerKind
	Parent  schema.Digest
	Objects []schema.Digest
}

// Graph is everything in a store that GC reasons about.
type Graph struct {
	Envs    []GraphEnv
	Layers  map[schema.Digest]GraphLayer
	Objects []schema.Digest
}

// Ref is one edge of the graph: a field of a metadata record or of a layer naming a
// layer or an object. Field is the JSON key the reference is stored under.
type Ref struct {
	Field  string
	To     schema.Digest
	Object bool // To names an object; otherwise a layer
}

// Refs lists what the environment refers to: its manifest object, then its base,
// dependency and policy layers. Zero digests are left out.
func (e GraphEnv) Refs() []Ref {
	var out []Ref
	add := func(field string, d schema.Digest, object bool) {
		if !d.IsZero() {
			out = append(out, Ref{Field: field, To: d, Object: object})
		}
	}
	add("manifest_hash", e.Manifest, true)
	add("base_layer", e.Base, false)
	for _, l := range e.Dependencies {
		add("dependency_layers", l, false)
	}
	add("policy_layer", e.Policy, false)
	return out
}

// Refs lists what the layer refers to: its parent layer, then its objects.
func (l GraphLayer) Refs() []Ref {
	var out []Ref
	if !l.Parent.IsZero() {
		out = append(out, Ref{Field: "parent", To: l.Parent})
	}
	for _, o := range l.Objects {
		out = append(out, Ref{Field: "object_refs", To: o, Object: true})
	}
	return out
}

// Marks is the result of Mark: what is garbage, each list sorted.
type Marks struct {
	OrphanEnvs    []schema.EnvID
	OrphanLayers  []schema.Digest
	OrphanObjects []schema.Digest
}

// Mark computes what GC may delete, the original's rules:
//   - an environment is an orphan when its ref_count is 0 and it is neither Running nor
//     Archived; every other environment is live;
//   - a live environment keeps its layers and its manifest object;
//   - a Snapshot layer whose parent is live is live (repeated until nothing changes; the
//     original made one pass, which gives the same result for snapshots of base layers);
//   - a live layer keeps every object it references;
//   - everything else is an orphan.
//
// Mark does no I/O.
func Mark(g Graph) Marks {
	var m Marks
	liveLayers := map[schema.Digest]bool{}
	liveObjects := map[schema.Digest]bool{}
	for _, e := range g.Envs {
		if e.RefCount == 0 && e.State != StateRunning && e.State != StateArchived {
			m.OrphanEnvs = append(m.OrphanEnvs, e.ID)
			continue
		}
		for _, r := range e.Refs() {
			if r.Object {
				liveObjects[r.To] = true
			} else {
				liveLayers[r.To] = true
			}
		}
	}
	sort.Slice(m.OrphanEnvs, func(i, j int) bool { return less(m.OrphanEnvs[i], m.OrphanEnvs[j]) })
	for changed := true; changed; {
		changed = false
		for d, l := range g.Layers {
			if !liveLayers[d] && l.Kind == KindSnapshot && !l.Parent.IsZero() && liveLayers[l.Parent] {
				liveLayers[d] = true
				changed = true
			}
		}
	}
	for d, l := range g.Layers {
		if liveLayers[d] {
			for _, r := range l.Refs() {
				if r.Object {
					liveObjects[r.To] = true
				}
			}
		} else {
			m.OrphanLayers = append(m.OrphanLayers, d)
		}
	}
	sort.Slice(m.OrphanLayers, func(i, j int) bool { return less(m.OrphanLayers[i], m.OrphanLayers[j]) })
	for _, o := range g.Objects {
		if !liveObjects[o] {
			m.OrphanObjects = append(m.OrphanObjects, o)
		}
	}
	sort.Slice(m.OrphanObjects, func(i, j int) bool { return less(m.OrphanObjects[i], m.OrphanObjects[j]) })
	return m
}

func less(a, b schema.Digest) bool { return bytes.Compare(a[:], b[:]) < 0 }

// GCOptions tune a collection.
type GCOptions struct {
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// LeftoverAge is how old a temp file, staging entry or swap leftover must be
	// before it counts as a crash leftover. Default 10 minutes.
	LeftoverAge time.Duration
}

// GCReport says what a collection found and removed. In a dry run the Removed counts
// are zero and Leftovers lists what would go.
type GCReport struct {
	DryRun          bool     `json:"dry_run"`
	OrphanedEnvs    []string `json:"orphaned_envs"`
	OrphanedLayers  []string `json:"orphaned_layers"`
	OrphanedObjects []string `json:"orphaned_objects"`
	RemovedEnvs     int      `json:"removed_envs"`
	RemovedLayers   int      `json:"removed_layers"`
	RemovedObjects  int      `json:"removed_objects"`
	// Leftovers are crash leftovers: old temp files, staging entries and swap-aside
	// directories that no incomplete WAL entry refers to.
	Leftovers        []string `json:"leftovers"`
	RemovedLeftovers int      `json:"removed_leftovers"`
}

// Graph reads the store into a Graph. Any metadata file or layer that cannot be read
// or verified is an error: GC must not delete what it might reference.
func (s *Store) Graph(ctx context.Context) (Graph, error) {
	g := Graph{Layers: map[schema.Digest]GraphLayer{}}
	err := s.Envs.Walk(ctx, func(e Entry) error {
		if e.Err != nil {
			return wrap("gc", fmt.Errorf("unreadable metadata %s stops GC (fix or remove it; see verify-store): %w", e.Name, e.Err))
		}
		g.Envs = append(g.Envs, graphEnv(&e.Meta))
		return nil
	})
	if err != nil {
		return g, err
	}
	// Files in layers/ not named by a digest cannot be referenced; Verify reports them.
	lds, err := s.Layers.List(ctx)
	if err != nil {
		return g, err
	}
	for _, d := range lds {
		l, err := s.Layers.Get(ctx, d)
		if err != nil {
			return g, wrap("gc", fmt.Errorf("unreadable layer %s stops GC (fix or remove it; see verify-store): %w", d, err))
		}
		g.Layers[d] = graphLayer(l)
	}
	if g.Objects, err = s.Objects.List(ctx); err != nil {
		return g, err
	}
	return g, nil
}

// graphEnv is a metadata record as a node of the graph.
func graphEnv(m *Metadata) GraphEnv {
	return GraphEnv{
		ID: m.EnvID, State: m.State, RefCount: m.RefCount, Manifest: m.ManifestHash,
		Base: m.BaseLayer, Dependencies: m.DependencyLayers, Policy: m.PolicyLayer,
	}
}

// graphLayer is a layer as a node of the graph.
func graphLayer(l Layer) GraphLayer {
	return GraphLayer{Kind: l.Kind, Parent: l.Parent, Objects: l.ObjectRefs}
}

// GC collects garbage: Mark over the store's Graph, then the sweep, in the original's
// order (environments: env dir then metadata; then layers; then objects), then crash
// leftovers. The caller must hold the exclusive store lock and have run WAL recovery.
// Cancelling ctx stops the sweep between items: the partial report comes back with
// the context's error.
func (s *Store) GC(ctx context.Context, opts GCOptions) (GCReport, error) {
	if opts.LeftoverAge == 0 {
		opts.LeftoverAge = 10 * time.Minute
	}
	rep := GCReport{DryRun: opts.DryRun, OrphanedEnvs: []string{}, OrphanedLayers: []string{}, OrphanedObjects: []string{}, Leftovers: []string{}}
	g, err := s.Graph(ctx)
	if err != nil {
		return rep, err
	}
	marks := Mark(g)
	for _, id := range marks.OrphanEnvs {
		rep.OrphanedEnvs = append(rep.OrphanedEnvs, id.String())
	}
	for _, d := range marks.OrphanLayers {
		rep.OrphanedLayers = append(rep.OrphanedLayers, d.String())
	}
	for _, d := range marks.OrphanObjects {
		rep.OrphanedObjects = append(rep.OrphanedObjects, d.String())
	}
	leftovers, err := s.leftovers(ctx, opts.LeftoverAge)
	if err != nil {
		return rep, err
	}
	rep.Leftovers = append(rep.Leftovers, leftovers...)
	if opts.DryRun {
		return rep, nil
	}
	for _, id := range marks.OrphanEnvs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.Layout.RemoveTree(s.Layout.EnvPath(id)); err != nil {
			return rep, wrap("gc: remove env dir", err)
		}
		if err := s.Envs.Remove(ctx, id); err != nil {
			return rep, err
		}
		rep.RemovedEnvs++
	}
	for _, d := range marks.OrphanLayers {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.Layers.Remove(ctx, d); err != nil {
			return rep, err
		}
		rep.RemovedLayers++
	}
	for _, d := range marks.OrphanObjects {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.Objects.Remove(ctx, d); err != nil {
			return rep, err
		}
		rep.RemovedObjects++
	}
	for _, p := range leftovers {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.Layout.RemoveTree(p); err != nil {
			return rep, wrap("gc: remove leftover", err)
		}
		rep.RemovedLeftovers++
	}
	return rep, nil
}

// leftovers lists crash leftovers older than age: .tmp* files of atomic writes in the
// store directories, entries of staging/ and env/<id>/*.swap-old directories, unless an
// incomplete WAL entry names them.
func (s *Store) leftovers(ctx context.Context, age time.Duration) ([]string, error) {
	ops, _, err := s.WAL.list(ctx, false)
	if err != nil {
		return nil, err
	}
	referenced := map[string]bool{}
	for _, op := range ops {
		for _, st := range op.RollbackSteps {
			for _, p := range []string{st.Path, st.From, st.To} {
				if p != "" {
					referenced[p] = true
				}
			}
		}
	}
	cutoff := s.now().Add(-age)
	old := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.ModTime().Before(cutoff)
	}
	var out []string
	l := s.Layout
	for _, dir := range []string{l.StoreDir(), l.ObjectsDir(), l.LayersDir(), l.MetadataDir(), l.WALDir()} {
		// Names only: these directories hold a file per object or environment, and
		// only the few temp names need a closer look.
		names, err := readNames(dir)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, wrap("gc: scan leftovers", err)
		}
		for _, name := range names {
			if !isTempName(name) {
				continue
			}
			p := filepath.Join(dir, name)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.ModTime().Before(cutoff) {
				out = append(out, p)
			}
		}
	}
	des, err := os.ReadDir(l.StagingDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, wrap("gc: scan staging", err)
	}
	for _, de := range des {
		p := filepath.Join(l.StagingDir(), de.Name())
		if !referenced[p] && old(p) {
			out = append(out, p)
		}
	}
	envs, err := os.ReadDir(l.EnvDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, wrap("gc: scan env", err)
	}
	for _, e := range envs {
		if _, err := schema.ParseDigest(e.Name()); err != nil || !e.IsDir() {
			continue
		}
		des, err := os.ReadDir(filepath.Join(l.EnvDir(), e.Name()))
		if err != nil {
			continue
		}
		for _, de := range des {
			p := filepath.Join(l.EnvDir(), e.Name(), de.Name())
			if strings.HasSuffix(de.Name(), swapSuffix) && !referenced[p] && old(p) {
				out = append(out, p)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// readNames lists the names in dir, unsorted.
func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}
