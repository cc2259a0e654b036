package remote

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/karapace/karapace/schema"
)

// Memory is an in-memory Backend with the reference server's semantics: keys are
// validated, content-addressed blobs are verified on put, the registry is versioned by the
// blake3 of its bytes. It is safe for concurrent use. Useful for tests and as a fake.
type Memory struct {
	mu       sync.Mutex
	blobs    [3]map[string][]byte
	registry []byte
}

// NewMemory returns an empty in-memory backend.
func NewMemory() *Memory {
	m := &Memory{}
	for i := range m.blobs {
		m.blobs[i] = map[string][]byte{}
	}
	return m
}

func checkKind(kind Kind, key string) (schema.Digest, error) {
	if !kind.Valid() {
		return schema.Digest{}, fmt.Errorf("%w: unknown kind %d", ErrInvalidKey, int(kind))
	}
	return ParseKey(key)
}

// PutBlob implements BlobPutter.
func (m *Memory) PutBlob(ctx context.Context, kind Kind, key string, r io.Reader, size int64) error {
	d, err := checkKind(kind, key)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("put %s %s: %w", kind, key, err)
	}
	if size >= 0 && int64(buf.Len()) != size {
		return fmt.Errorf("put %s %s: got %d bytes, announced %d", kind, key, buf.Len(), size)
	}
	if kind == Metadata {
		if err := CheckMetadataBlob(buf.Bytes(), key); err != nil {
			return fmt.Errorf("put %s %s: %w", kind, key, err)
		}
	}
	if kind.ContentAddressed() {
		if got := schema.Sum(buf.Bytes()); got != d {
			return &IntegrityError{Key: key, Expected: key, Actual: got.String()}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[kind][key] = buf.Bytes()
	return nil
}

// UploadsVerified implements UploadVerifier: PutBlob checks content-addressed keys.
func (m *Memory) UploadsVerified() bool { return true }

// Tamper stores data under kind/key without any check. Tests use it to play a corrupt
// or malicious remote.
func (m *Memory) Tamper(kind Kind, key string, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[kind][key] = slices.Clone(data)
}

// GetBlob implements BlobGetter.
func (m *Memory) GetBlob(ctx context.Context, kind Kind, key string) (io.ReadCloser, error) {
	if _, err := checkKind(kind, key); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[kind][key]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", kind, key, ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// HasBlob implements BlobStatter.
func (m *Memory) HasBlob(ctx context.Context, kind Kind, key string) (bool, error) {
	if _, err := checkKind(kind, key); err != nil {
		return false, err
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.blobs[kind][key]
	return ok, nil
}

// ListBlobs implements BlobLister.
func (m *Memory) ListBlobs(ctx context.Context, kind Kind) ([]string, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrInvalidKey, int(kind))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.blobs[kind]))
	for k := range m.blobs[kind] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, nil
}

// GetRegistry implements RegistryStore.
func (m *Memory) GetRegistry(ctx context.Context) ([]byte, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.registry == nil {
		return nil, "", fmt.Errorf("registry: %w", ErrNotFound)
	}
	return slices.Clone(m.registry), RegistryVersion(m.registry), nil
}

// PutRegistry implements RegistryStore. The document must parse as a Registry.
func (m *Memory) PutRegistry(ctx context.Context, data []byte, ifVersion string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if _, err := ParseRegistry(data); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := checkVersion(m.registry, ifVersion); err != nil {
		return err
	}
	m.registry = slices.Clone(data)
	return nil
}

// checkVersion applies PutRegistry's ifVersion rule to the current document (nil: none).
func checkVersion(current []byte, ifVersion string) error {
	switch {
	case ifVersion == "":
		return nil
	case ifVersion == NoRegistry:
		if current != nil {
			return fmt.Errorf("registry: created concurrently: %w", ErrConflict)
		}
	case current == nil || RegistryVersion(current) != ifVersion:
		return fmt.Errorf("registry: changed concurrently: %w", ErrConflict)
	}
	return nil
}

// RegistryVersion is the version of a registry document: the hex blake3 of its bytes.
// The reference server sends it as the registry's ETag (quoted).
func RegistryVersion(data []byte) string { return schema.Sum(data).String() }

// ctxReader stops a copy when its context is cancelled.
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
