package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/karapace/karapace/schema"
)

// IntegrityFailure names one bad store entry and why. Kind is "object", "layer" or
// "metadata" for an entry that does not match its hash or checksum (Hash is its file
// name); "directory" for a store directory that is missing (Hash is its path below the
// root, e.g. "store/objects"); "reference" for a dangling reference (Hash is the
// missing item, Missing says whether it is a "layer" or an "object", Field is the key
// holding the reference, Layer the layer holding it, empty when it is EnvID's
// metadata; EnvID is the environment concerned, empty when none).
type IntegrityFailure struct {
	Kind    string `json:"kind"`
	Hash    string `json:"hash"`
	Reason  string `json:"reason"`
	Missing string `json:"missing,omitempty"`
	Field   string `json:"field,omitempty"`
	EnvID   string `json:"env_id,omitempty"`
	Layer   string `json:"layer,omitempty"`
}

// IntegrityReport is the result of Verify. Checked and Passed count objects, as in the
// original; RefsChecked and RefsPassed count references (see Dangling).
type IntegrityReport struct {
	Checked         int                `json:"checked"`
	Passed          int                `json:"passed"`
	Failed          []IntegrityFailure `json:"failed"`
	LayersChecked   int                `json:"layers_checked"`
	LayersPassed    int                `json:"layers_passed"`
	MetadataChecked int                `json:"metadata_checked"`
	MetadataPassed  int                `json:"metadata_passed"`
	RefsChecked     int                `json:"references_checked"`
	RefsPassed      int                `json:"references_passed"`
}

// OK reports whether nothing failed.
func (r IntegrityReport) OK() bool { return len(r.Failed) == 0 }

// Verify re-hashes every object (streaming), every layer and every metadata checksum,
// and checks that every reference resolves (Dangling, over the graph read on the way;
// no object is read twice). It reports each failure by name: missing store
// directories first, then objects, layers, metadata, and dangling references. Unlike
// the original it reports corrupt metadata too (the original skipped it silently),
// stray files in objects/ and layers/, and what a store lacks.
func (s *Store) Verify(ctx context.Context) (IntegrityReport, error) {
	rep := IntegrityReport{Failed: s.missingDirs()}
	g := Graph{Layers: map[schema.Digest]GraphLayer{}}
	objs, strays, err := listDigests(ctx, s.Layout.ObjectsDir())
	if err != nil {
		return rep, wrap("verify objects", err)
	}
	g.Objects = objs
	rep.Checked = len(objs) + len(strays)
	reasons, err := s.verifyObjects(ctx, objs)
	if err != nil {
		return rep, err
	}
	for i, d := range objs {
		if reasons[i] != "" {
			rep.Failed = append(rep.Failed, IntegrityFailure{Kind: "object", Hash: d.String(), Reason: reasons[i]})
			continue
		}
		rep.Passed++
	}
	for _, name := range strays {
		rep.Failed = append(rep.Failed, IntegrityFailure{Kind: "object", Hash: name, Reason: "object read error: file name is not a BLAKE3 digest"})
	}
	layers, strays, err := listDigests(ctx, s.Layout.LayersDir())
	if err != nil {
		return rep, wrap("verify layers", err)
	}
	rep.LayersChecked = len(layers) + len(strays)
	for _, d := range layers {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		l, err := s.Layers.Get(ctx, d)
		if err != nil {
			// Present all the same: what refers to it is not dangling.
			g.Layers[d] = GraphLayer{}
			rep.Failed = append(rep.Failed, IntegrityFailure{Kind: "layer", Hash: d.String(), Reason: reason("layer", err)})
			continue
		}
		g.Layers[d] = graphLayer(l)
		rep.LayersPassed++
	}
	for _, name := range strays {
		rep.Failed = append(rep.Failed, IntegrityFailure{Kind: "layer", Hash: name, Reason: "layer read error: file name is not a BLAKE3 digest"})
	}
	entries, err := s.Envs.ListWithErrors(ctx)
	if err != nil {
		return rep, err
	}
	rep.MetadataChecked = len(entries)
	for _, e := range entries {
		if e.Err != nil {
			rep.Failed = append(rep.Failed, IntegrityFailure{Kind: "metadata", Hash: e.Name, Reason: reason("metadata", e.Err)})
			continue
		}
		g.Envs = append(g.Envs, graphEnv(&e.Meta))
		rep.MetadataPassed++
	}
	checked, dangling := Dangling(g)
	rep.RefsChecked, rep.RefsPassed = checked, checked
	for _, d := range dangling {
		if s.settled(ctx, d) {
			continue
		}
		rep.RefsPassed--
		missing := "layer"
		if d.Object {
			missing = "object"
		}
		rep.Failed = append(rep.Failed, IntegrityFailure{
			Kind: "reference", Hash: d.To.String(), Reason: d.String(),
			Missing: missing, Field: d.Field, EnvID: hexOrEmpty(d.Env), Layer: hexOrEmpty(d.Layer),
		})
	}
	return rep, nil
}

// missingDirs reports the store directories every environment needs (objects/,
// layers/, metadata/) that are missing or are not directories. Only an initialized
// store must have them: Initialize creates them before the version file, and a
// store cut short before it (a lock file, a WAL entry) holds nothing to refer to.
func (s *Store) missingDirs() []IntegrityFailure {
	out := []IntegrityFailure{}
	l := s.Layout
	if _, err := os.Lstat(l.VersionFile()); errors.Is(err, fs.ErrNotExist) {
		return out
	}
	for _, dir := range []string{l.ObjectsDir(), l.LayersDir(), l.MetadataDir()} {
		name, err := filepath.Rel(l.Root(), dir)
		if err != nil {
			name = dir
		}
		var why string
		switch fi, err := os.Stat(dir); {
		case errors.Is(err, fs.ErrNotExist):
			why = name + " is missing"
		case err != nil:
			why = fmt.Sprintf("%s: %v", name, err)
		case !fi.IsDir():
			why = name + " is not a directory"
		default:
			continue
		}
		out = append(out, IntegrityFailure{Kind: "directory", Hash: name, Reason: why})
	}
	return out
}

// settled reports whether a dangling reference Dangling found is resolved by now, as
// Verify takes no lock: its target was stored after the listing (writers store what is
// referred to before what refers to it), or what holds it was removed or rewritten
// since it was read (GC and destroy remove the holder first).
func (s *Store) settled(ctx context.Context, d DanglingRef) bool {
	target := s.Layers.Path(d.To)
	if d.Object {
		target = s.Objects.Path(d.To)
	}
	if _, err := os.Lstat(target); err == nil {
		return true
	}
	if !d.Layer.IsZero() {
		_, err := os.Lstat(s.Layers.Path(d.Layer))
		return errors.Is(err, fs.ErrNotExist)
	}
	m, err := s.Envs.Get(ctx, d.Env)
	if err != nil {
		return errors.Is(err, ErrNotFound)
	}
	for _, r := range graphEnv(&m).Refs() {
		if r == d.Ref {
			return false
		}
	}
	return true
}

// verifyObjects re-hashes objects on up to GOMAXPROCS workers and returns, for each,
// why it failed ("" when it passed). A worker hashes a small object from its own 1 MiB
// buffer, and reads a large one on one goroutine while another hashes it (chunkPipe),
// so a single large object also keeps two cores busy.
func (s *Store) verifyObjects(ctx context.Context, objs []schema.Digest) ([]string, error) {
	reasons := make([]string, len(objs))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(objs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, copyBufSize)
			for {
				i := int(next.Add(1)) - 1
				if i >= len(objs) || ctx.Err() != nil {
					return
				}
				if err := s.Objects.verify(ctx, objs[i], buf); err != nil {
					reasons[i] = reason("object", err)
				}
			}
		}()
	}
	wg.Wait()
	return reasons, ctx.Err()
}

// reason renders a failure the way the original words it.
func reason(what string, err error) string {
	var ie *IntegrityError
	if errors.As(err, &ie) {
		if what == "metadata" {
			return fmt.Sprintf("metadata checksum mismatch: got %s", ie.Actual)
		}
		return fmt.Sprintf("%s hash mismatch: got %s", what, ie.Actual)
	}
	return fmt.Sprintf("%s read error: %v", what, err)
}
