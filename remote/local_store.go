package remote

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Local is a store.Store seen as a Source for Push and a Sink for Pull.
//
// A pull stages every blob in its own directory under <root>/store/staging, where no
// reader looks; Commit renames the blobs into objects/ and layers/ (each rename atomic,
// each directory fsynced) and writes the metadata last. A pull that dies before Commit
// leaves only a staging directory, which store's GC removes as a crash leftover; a pull
// that dies during Commit leaves verified, unreferenced blobs and no environment.
// The caller holds the store lock (core does).
type Local struct {
	st *store.Store
	// adjust, when set, edits pulled metadata before it is written (core resets the state
	// and checks the name there).
	adjust func(*store.Metadata) error
}

var (
	_ Source = (*Local)(nil)
	_ Sink   = (*Local)(nil)
)

// NewLocal returns st as a Source and Sink. adjust may be nil; by default a pulled
// environment keeps its remote record, except that Running (a process on another
// machine) becomes Built and a name already used by another local environment is
// dropped.
func NewLocal(st *store.Store, adjust func(*store.Metadata) error) *Local {
	return &Local{st: st, adjust: adjust}
}

func envOf(m store.Metadata) Env {
	e := Env{ID: m.EnvID, ShortID: m.ShortID, Name: m.Name, ManifestHash: m.ManifestHash}
	if !m.BaseLayer.IsZero() {
		e.Layers = append(e.Layers, m.BaseLayer)
	}
	for _, d := range m.DependencyLayers {
		if !d.IsZero() {
			e.Layers = append(e.Layers, d)
		}
	}
	return e
}

// ReadEnv implements Source: the verified record, sent as its canonical encoding.
func (l *Local) ReadEnv(ctx context.Context, id schema.EnvID) (Env, []byte, error) {
	m, err := l.st.Envs.Get(ctx, id)
	if err != nil {
		return Env{}, nil, err
	}
	b, err := m.Encode()
	if err != nil {
		return Env{}, nil, err
	}
	return envOf(m), b, nil
}

// LayerObjects implements Source and Sink.
func (l *Local) LayerObjects(ctx context.Context, layer schema.Digest) ([]schema.Digest, error) {
	ly, err := l.st.Layers.Get(ctx, layer)
	if err != nil {
		return nil, err
	}
	return ly.ObjectRefs, nil
}

func (l *Local) blobPath(kind Kind, key schema.Digest) (string, error) {
	switch kind {
	case Object:
		return l.st.Objects.Path(key), nil
	case Layer:
		return l.st.Layers.Path(key), nil
	}
	return "", fmt.Errorf("%w: no local %s blobs", ErrInvalidKey, kind)
}

// OpenBlob implements Source. The file is read raw: Push verifies it while sending.
func (l *Local) OpenBlob(ctx context.Context, kind Kind, key schema.Digest) (io.ReadCloser, int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	p, err := l.blobPath(kind, key)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, 0, fmt.Errorf("local %s %s: %w", kind, key, store.ErrNotFound)
		}
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	return f, fi.Size(), nil
}

// HasBlob implements Sink.
func (l *Local) HasBlob(ctx context.Context, kind Kind, key schema.Digest) (bool, error) {
	switch kind {
	case Object:
		return l.st.Objects.Exists(ctx, key)
	case Layer:
		return l.st.Layers.Exists(ctx, key)
	}
	return false, fmt.Errorf("%w: no local %s blobs", ErrInvalidKey, kind)
}

// DecodeEnv implements Sink.
func (l *Local) DecodeEnv(data []byte) (Env, error) {
	m, err := store.DecodeMetadata(data)
	if err != nil {
		return Env{}, err
	}
	return envOf(m), nil
}

// DecodeLayer implements Sink.
func (l *Local) DecodeLayer(data []byte) ([]schema.Digest, error) {
	ly, err := store.DecodeLayer(data)
	if err != nil {
		return nil, err
	}
	return ly.ObjectRefs, nil
}

// BeginPull implements Sink.
func (l *Local) BeginPull(ctx context.Context, id schema.EnvID) (PullTx, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := l.st.Layout.Initialize(ctx); err != nil {
		return nil, err
	}
	var r [6]byte
	_, _ = rand.Read(r[:])
	dir := filepath.Join(l.st.Layout.StagingDir(), "pull-"+id.Short()+"-"+hex.EncodeToString(r[:]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("begin pull: %w", err)
	}
	return &localTx{l: l, dir: dir, staged: map[stagedBlob]bool{}}, nil
}

type localTx struct {
	l      *Local
	dir    string
	mu     sync.Mutex
	staged map[stagedBlob]bool
	done   bool
}

type stagedBlob struct {
	kind Kind
	key  schema.Digest
}

// PutBlob stages one verified blob: temp file, stream (the source read and verified on
// this goroutine while another writes the file), fsync, rename to its key.
func (t *localTx) PutBlob(ctx context.Context, kind Kind, key schema.Digest, r io.Reader) (err error) {
	if kind != Object && kind != Layer {
		return fmt.Errorf("%w: cannot stage %s", ErrInvalidKey, kind)
	}
	f, err := os.CreateTemp(t.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = store.CopyPipelined(ctx, store.WriteBehind(f), ctxReader{ctx, r}); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(t.dir, kind.String()+"-"+key.String())); err != nil {
		return err
	}
	t.mu.Lock()
	t.staged[stagedBlob{kind, key}] = true
	t.mu.Unlock()
	return nil
}

// Commit moves the staged blobs into the store, objects before layers, then writes the
// metadata.
func (t *localTx) Commit(ctx context.Context, env Env, metadata []byte) error {
	m, err := store.DecodeMetadata(metadata)
	if err != nil {
		return err
	}
	if m.EnvID != env.ID {
		return fmt.Errorf("commit pull: metadata names %s, not %s: %w", m.EnvID.Short(), env.ID.Short(), ErrIntegrity)
	}
	if m.State == store.StateRunning {
		m.State = store.StateBuilt
	}
	if t.l.adjust != nil {
		if err := t.l.adjust(&m); err != nil {
			return err
		}
	}
	// Names are unique in a store: a pulled name that another local environment holds
	// (or that is not a valid name here) is dropped rather than duplicated.
	if m.Name != "" {
		if store.ValidateName(m.Name) != nil {
			m.Name = ""
		} else if other, err := t.l.st.Envs.GetByName(ctx, m.Name); err == nil && other.EnvID != m.EnvID {
			m.Name = ""
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	for _, kind := range []Kind{Object, Layer} {
		moved := false
		for b := range t.staged {
			if b.kind != kind {
				continue
			}
			key := b.key
			if err := ctx.Err(); err != nil {
				return err
			}
			dst, _ := t.l.blobPath(kind, key)
			if err := os.Rename(filepath.Join(t.dir, kind.String()+"-"+key.String()), dst); err != nil {
				return fmt.Errorf("commit pull: %w", err)
			}
			moved = true
		}
		if moved {
			p, _ := t.l.blobPath(kind, schema.Digest{})
			if err := syncDir(filepath.Dir(p)); err != nil {
				return fmt.Errorf("commit pull: %w", err)
			}
		}
	}
	if err := t.l.st.Envs.Put(ctx, m); err != nil {
		return err
	}
	t.done = true
	return os.RemoveAll(t.dir)
}

// Abort removes the staging directory.
func (t *localTx) Abort() error {
	if t.done {
		return nil
	}
	t.done = true
	return os.RemoveAll(t.dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
