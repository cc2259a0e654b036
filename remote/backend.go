package remote

import (
	"context"
	"io"
)

// BlobPutter stores blobs. PutBlob streams r to the remote; size is the number of bytes
// r will yield, or -1 when unknown. Content-addressed kinds are verified by the receiver:
// bytes that do not hash to key are refused and nothing is stored.
type BlobPutter interface {
	PutBlob(ctx context.Context, kind Kind, key string, r io.Reader, size int64) error
}

// BlobGetter reads blobs. The caller closes the reader; errors wrap ErrNotFound when the
// blob does not exist. The reader yields the bytes as stored: verifying them is the
// caller's job (see Pull).
type BlobGetter interface {
	GetBlob(ctx context.Context, kind Kind, key string) (io.ReadCloser, error)
}

// BlobStatter reports whether a blob exists.
type BlobStatter interface {
	HasBlob(ctx context.Context, kind Kind, key string) (bool, error)
}

// BlobLister lists the keys of one kind, sorted.
type BlobLister interface {
	ListBlobs(ctx context.Context, kind Kind) ([]string, error)
}

// RegistryStore reads and writes the registry document. GetRegistry returns the bytes and
// an opaque version (empty when the backend has none); errors wrap ErrNotFound when no
// registry exists yet. PutRegistry with a non-empty ifVersion succeeds only if the
// registry still has that version (else an error wrapping ErrConflict); ifVersion
// NoRegistry means "only if there is none yet"; an empty ifVersion writes unconditionally.
type RegistryStore interface {
	GetRegistry(ctx context.Context) (data []byte, version string, err error)
	PutRegistry(ctx context.Context, data []byte, ifVersion string) error
}

// NoRegistry is the ifVersion for PutRegistry that means "create, only if absent".
const NoRegistry = "*"

// Backend is a whole remote store, as protocol v1 defines it.
type Backend interface {
	BlobPutter
	BlobGetter
	BlobStatter
	BlobLister
	RegistryStore
}
