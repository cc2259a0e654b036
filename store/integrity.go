package store

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	for _, d := range objs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if err := s.verifyObject(ctx, d.String()); err != nil {
			rep.Failed = append(rep.Failed, IntegrityFailure{"object", d.String(), err.Error()})
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

func (s *Store) verifyObject(ctx context.Context, name string) error {
	d, _ := ParseID(name)
	r, err := s.Objects.open(ctx, d)
	if err != nil {
		return errors.New(reason("object", err))
	}
	defer r.Close()
	if _, err := r.WriteTo(io.Discard); err != nil {
		return errors.New(reason("object", err))
	}
	return nil
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
