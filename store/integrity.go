package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/karapace/karapace/schema"
)

// IntegrityFailure names one bad store entry and why.
type IntegrityFailure struct {
	Kind   string `json:"kind"` // "object", "layer" or "metadata"
	Hash   string `json:"hash"` // file name
	Reason string `json:"reason"`
}

// IntegrityReport is the result of Verify. Checked and Passed count objects, as in the
// original.
type IntegrityReport struct {
	Checked         int                `json:"checked"`
	Passed          int                `json:"passed"`
	Failed          []IntegrityFailure `json:"failed"`
	LayersChecked   int                `json:"layers_checked"`
	LayersPassed    int                `json:"layers_passed"`
	MetadataChecked int                `json:"metadata_checked"`
	MetadataPassed  int                `json:"metadata_passed"`
}

// OK reports whether nothing failed.
func (r IntegrityReport) OK() bool { return len(r.Failed) == 0 }

// Verify re-hashes every object (streaming), every layer and every metadata checksum,
// and reports each bad one by name, objects first, then layers, then metadata. Unlike
// the original it reports corrupt metadata too (the original skipped it silently), and
// stray files in objects/ and layers/.
func (s *Store) Verify(ctx context.Context) (IntegrityReport, error) {
	rep := IntegrityReport{Failed: []IntegrityFailure{}}
	objs, strays, err := listDigests(ctx, s.Layout.ObjectsDir())
	if err != nil {
		return rep, wrap("verify objects", err)
	}
	rep.Checked = len(objs) + len(strays)
	reasons, err := s.verifyObjects(ctx, objs)
	if err != nil {
		return rep, err
	}
	for i, d := range objs {
		if reasons[i] != "" {
			rep.Failed = append(rep.Failed, IntegrityFailure{"object", d.String(), reasons[i]})
			continue
		}
		rep.Passed++
	}
	for _, name := range strays {
		rep.Failed = append(rep.Failed, IntegrityFailure{"object", name, "object read error: file name is not a BLAKE3 digest"})
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
		_, err := s.Layers.Get(ctx, d)
		if err != nil {
			rep.Failed = append(rep.Failed, IntegrityFailure{"layer", d.String(), reason("layer", err)})
			continue
		}
		rep.LayersPassed++
	}
	for _, name := range strays {
		rep.Failed = append(rep.Failed, IntegrityFailure{"layer", name, "layer read error: file name is not a BLAKE3 digest"})
	}
	entries, err := s.Envs.ListWithErrors(ctx)
	if err != nil {
		return rep, err
	}
	rep.MetadataChecked = len(entries)
	for _, e := range entries {
		if e.Err != nil {
			rep.Failed = append(rep.Failed, IntegrityFailure{"metadata", e.Name, reason("metadata", e.Err)})
			continue
		}
		rep.MetadataPassed++
	}
	return rep, nil
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
