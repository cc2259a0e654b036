package remote

import (
	"context"
	"io"

	"github.com/karapace/karapace/schema"
)

// Env is what push and pull need to know of an environment's metadata.
type Env struct {
	ID      schema.EnvID
	ShortID string
	Name    string
	// ManifestHash is the key of the manifest object, zero when there is none.
	ManifestHash schema.Digest
	// Layers are the base layer then the dependency layers: what an environment needs
	// to be rebuilt elsewhere. Snapshot and policy layers stay local, as in the original.
	Layers []schema.Digest
}

// Source is a local store as Push reads it.
type Source interface {
	// ReadEnv returns an environment's metadata, verified against its checksum, and the
	// bytes to send as its metadata blob.
	ReadEnv(ctx context.Context, id schema.EnvID) (Env, []byte, error)
	// LayerObjects returns the object keys a local layer refers to, verified.
	LayerObjects(ctx context.Context, layer schema.Digest) ([]schema.Digest, error)
	// OpenBlob opens a local object or layer for streaming and returns its size.
	OpenBlob(ctx context.Context, kind Kind, key schema.Digest) (io.ReadCloser, int64, error)
}

// Sink is a local store as Pull writes it.
type Sink interface {
	// HasBlob reports whether the local store has an object or layer.
	HasBlob(ctx context.Context, kind Kind, key schema.Digest) (bool, error)
	// LayerObjects returns the object keys a local layer refers to, verified.
	LayerObjects(ctx context.Context, layer schema.Digest) ([]schema.Digest, error)
	// DecodeEnv parses a metadata blob and verifies its checksum.
	DecodeEnv(data []byte) (Env, error)
	// DecodeLayer parses a layer blob and returns the object keys it refers to.
	DecodeLayer(data []byte) ([]schema.Digest, error)
	// BeginPull starts a pull of one environment. Nothing it writes becomes visible in
	// the store before Commit; after Abort, or a crash, nothing of it remains visible.
	BeginPull(ctx context.Context, id schema.EnvID) (PullTx, error)
}

// PullTx is one pull in progress.
type PullTx interface {
	// PutBlob stores an object or layer from r. r may fail at its end (an
	// *IntegrityError when the bytes do not match key): then nothing is stored. PutBlob
	// is called from several goroutines at once.
	PutBlob(ctx context.Context, kind Kind, key schema.Digest, r io.Reader) error
	// Commit makes every blob visible, then writes the metadata (whose bytes were
	// verified by DecodeEnv into env) as the last step.
	Commit(ctx context.Context, env Env, metadata []byte) error
	// Abort discards everything staged. It is a no-op after Commit.
	Abort() error
}
