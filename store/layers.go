package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/karapace/karapace/schema"
)

// LayerKind is the kind of a layer; its JSON is the PascalCase name.
type LayerKind string

// Layer kinds. The engine produces Base and Snapshot.
const (
	KindBase       LayerKind = "Base"
	KindDependency LayerKind = "Dependency"
	KindPolicy     LayerKind = "Policy"
	KindSnapshot   LayerKind = "Snapshot"
)

func (k LayerKind) valid() bool {
	switch k {
	case KindBase, KindDependency, KindPolicy, KindSnapshot:
		return true
	}
	return false
}

// Layer is a layer manifest. Its key in the store (its content hash) is the BLAKE3 of
// its pretty JSON; Hash is a field of its own (the tar hash for base layers, the
// snapshot id for snapshots). A zero Parent means none (JSON null); a zero TarHash
// means a legacy layer without tar content (JSON "").
type Layer struct {
	Hash       schema.Digest
	Kind       LayerKind
	Parent     schema.Digest
	ObjectRefs []schema.Digest
	ReadOnly   bool
	TarHash    schema.Digest
}

// layerJSON is the exact JSON shape, field order included, of the original.
type layerJSON struct {
	Hash       string    `json:"hash"`
	Kind       LayerKind `json:"kind"`
	Parent     *string   `json:"parent"`
	ObjectRefs []string  `json:"object_refs"`
	ReadOnly   bool      `json:"read_only"`
	TarHash    string    `json:"tar_hash"`
}

// Encode returns the layer's pretty JSON, byte-identical to the original's.
func (l Layer) Encode() ([]byte, error) {
	if !l.Kind.valid() {
		return nil, fmt.Errorf("%w: layer kind %q", ErrCorrupt, l.Kind)
	}
	w := layerJSON{Hash: l.Hash.String(), Kind: l.Kind, ObjectRefs: digestStrings(l.ObjectRefs), ReadOnly: l.ReadOnly}
	if !l.Parent.IsZero() {
		p := l.Parent.String()
		w.Parent = &p
	}
	if !l.TarHash.IsZero() {
		w.TarHash = l.TarHash.String()
	}
	return schema.MarshalPretty(w)
}

// Digest returns the layer's content hash, its key in the store, without I/O.
func (l Layer) Digest() (schema.Digest, error) {
	b, err := l.Encode()
	if err != nil {
		return schema.Digest{}, err
	}
	return schema.Sum(b), nil
}

// DecodeLayer parses a layer manifest. hash, kind, object_refs and read_only are
// required; parent may be absent or null; tar_hash defaults to "" (legacy). Unknown
// keys are ignored. Hashes must be 64 lowercase hex characters.
func DecodeLayer(b []byte) (Layer, error) {
	var l Layer
	if err := requireKeys(b, "hash", "kind", "object_refs", "read_only"); err != nil {
		return l, err
	}
	var w layerJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return l, fmt.Errorf("%w: layer: %v", ErrCorrupt, err)
	}
	if !w.Kind.valid() {
		return l, fmt.Errorf("%w: layer kind %q", ErrCorrupt, w.Kind)
	}
	var err error
	l.Kind, l.ReadOnly = w.Kind, w.ReadOnly
	if l.Hash, err = parseField("hash", w.Hash); err != nil {
		return l, err
	}
	if w.Parent != nil {
		if l.Parent, err = parseField("parent", *w.Parent); err != nil {
			return l, err
		}
	}
	if w.TarHash != "" {
		if l.TarHash, err = parseField("tar_hash", w.TarHash); err != nil {
			return l, err
		}
	}
	if l.ObjectRefs, err = parseDigests("object_refs", w.ObjectRefs); err != nil {
		return l, err
	}
	return l, nil
}

// Layers stores layer manifests under <root>/store/layers/<content hash>.
type Layers struct {
	layout Layout
	dir    string
}

// NewLayers returns the layer store of a layout. It does no I/O.
func NewLayers(l Layout) *Layers { return &Layers{layout: l, dir: l.LayersDir()} }

// Path is the file of the layer with content hash d.
func (s *Layers) Path(d schema.Digest) string { return filepath.Join(s.dir, d.String()) }

// Put stores a layer manifest and returns its content hash. An existing file with that
// name is left alone.
func (s *Layers) Put(ctx context.Context, l Layer) (schema.Digest, error) {
	if err := ctx.Err(); err != nil {
		return schema.Digest{}, err
	}
	b, err := l.Encode()
	if err != nil {
		return schema.Digest{}, wrap("put layer", err)
	}
	d := schema.Sum(b)
	if _, err := os.Lstat(s.Path(d)); err == nil {
		return d, nil
	}
	if err := s.layout.mkdir(s.dir); err != nil {
		return schema.Digest{}, wrap("put layer", err)
	}
	if err := writeFileAtomic(s.Path(d), b); err != nil {
		return schema.Digest{}, wrap("put layer "+d.String(), err)
	}
	return d, nil
}

// Get reads layer d, checks that its bytes hash to d, and parses it.
func (s *Layers) Get(ctx context.Context, d schema.Digest) (Layer, error) {
	l, err := s.get(ctx, d)
	return l, wrap("get layer", err)
}

func (s *Layers) get(ctx context.Context, d schema.Digest) (Layer, error) {
	if err := ctx.Err(); err != nil {
		return Layer{}, err
	}
	b, err := readRecord(s.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return Layer{}, &NotFoundError{What: "layer", Key: d.String()}
	}
	if err != nil {
		return Layer{}, err
	}
	if got := schema.Sum(b); got != d {
		return Layer{}, &IntegrityError{What: "layer", Name: d.String(), Expected: d.String(), Actual: got.String()}
	}
	return DecodeLayer(b)
}

// Exists reports whether layer d is stored.
func (s *Layers) Exists(ctx context.Context, d schema.Digest) (bool, error) {
	return exists(ctx, s.Path(d))
}

// Remove deletes layer d; a missing layer is not an error.
func (s *Layers) Remove(ctx context.Context, d schema.Digest) error {
	return wrap("remove layer "+d.String(), removeFile(ctx, s.Path(d)))
}

// List returns the content hashes of all layers, ascending.
func (s *Layers) List(ctx context.Context) ([]schema.Digest, error) {
	ds, _, err := listDigests(ctx, s.dir)
	return ds, wrap("list layers", err)
}

// requireKeys fails unless b is a JSON object holding every key.
func requireKeys(b []byte, keys ...string) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if m == nil {
		return fmt.Errorf("%w: not a JSON object", ErrCorrupt)
	}
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return fmt.Errorf("%w: missing field %q", ErrCorrupt, k)
		}
	}
	return nil
}

func parseField(field, s string) (schema.Digest, error) {
	d, err := schema.ParseDigest(s)
	if err != nil {
		return d, fmt.Errorf("%w: field %s: %w", ErrCorrupt, field, err)
	}
	return d, nil
}

func parseDigests(field string, ss []string) ([]schema.Digest, error) {
	out := make([]schema.Digest, 0, len(ss))
	for _, s := range ss {
		d, err := parseField(field, s)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// digestStrings renders digests as hex, never nil (so JSON shows [] not null).
func digestStrings(ds []schema.Digest) []string {
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}
