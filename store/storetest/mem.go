package storetest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// MemObjects is an in-memory store.ObjectStore. It is safe for concurrent use.
type MemObjects struct {
	mu   sync.Mutex
	objs map[schema.Digest][]byte
}

var _ store.ObjectStore = (*MemObjects)(nil)

// NewMemObjects returns an empty in-memory object store.
func NewMemObjects() *MemObjects { return &MemObjects{objs: map[schema.Digest][]byte{}} }

// Put implements store.ObjectWriter.
func (m *MemObjects) Put(ctx context.Context, r io.Reader) (schema.Digest, error) {
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ctxReader{ctx, r}); err != nil {
		return schema.Digest{}, fmt.Errorf("put object: %w", err)
	}
	d := schema.Sum(buf.Bytes())
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[d] = buf.Bytes()
	return d, nil
}

// Open implements store.ObjectReader.
func (m *MemObjects) Open(ctx context.Context, d schema.Digest) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	b, ok := m.objs[d]
	m.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("open object %s: %w", d, store.ErrNotFound)
	}
	if got := schema.Sum(b); got != d {
		return nil, &store.IntegrityError{What: "object", Name: d.String(), Expected: d.String(), Actual: got.String()}
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Exists implements store.ObjectStore.
func (m *MemObjects) Exists(ctx context.Context, d schema.Digest) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.objs[d]
	return ok, ctx.Err()
}

// Remove implements store.ObjectStore.
func (m *MemObjects) Remove(ctx context.Context, d schema.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, d)
	return ctx.Err()
}

// List implements store.ObjectStore.
func (m *MemObjects) List(ctx context.Context) ([]schema.Digest, error) {
	m.mu.Lock()
	ds := make([]schema.Digest, 0, len(m.objs))
	for d := range m.objs {
		ds = append(ds, d)
	}
	m.mu.Unlock()
	sort.Slice(ds, func(i, j int) bool { return bytes.Compare(ds[i][:], ds[j][:]) < 0 })
	return ds, ctx.Err()
}

// Corrupt replaces the bytes stored under d, for tests of integrity checks.
func (m *MemObjects) Corrupt(d schema.Digest, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[d] = b
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
