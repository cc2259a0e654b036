package remote

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/karapace/karapace/schema"
)

// DefaultJobs is how many blobs move at once unless told otherwise.
const DefaultJobs = 4

// Limits on the JSON blobs, which are read whole.
const (
	maxMetadataBytes = 1 << 20
	maxLayerBytes    = 64 << 20
)

// Event reports progress of one blob. Bytes is how much has moved so far; Size is the
// blob's size, -1 when unknown. A blob the other side already has is reported once with
// Skipped set; a finished blob once with Done set. Progress callbacks are called from
// several goroutines at once.
type Event struct {
	Kind    Kind
	Key     string
	Bytes   int64
	Size    int64
	Done    bool
	Skipped bool
}

// PushOptions tunes Push.
type PushOptions struct {
	// Tag, when set, publishes the environment in the registry under "name@tag".
	Tag *Ref
	// Jobs bounds the number of blobs uploaded at once (DefaultJobs when 0 or less).
	Jobs int
	// Progress, when set, receives events.
	Progress func(Event)
	// Now stamps the registry entry; nil means time.Now.
	Now func() time.Time
}

// PushResult counts what a push did.
type PushResult struct {
	ObjectsPushed  int   `json:"objects_pushed"`
	LayersPushed   int   `json:"layers_pushed"`
	ObjectsSkipped int   `json:"objects_skipped"`
	LayersSkipped  int   `json:"layers_skipped"`
	BytesSent      int64 `json:"bytes_sent"`
}

// PushBackend is what Push needs of a remote.
type PushBackend interface {
	BlobPutter
	BlobStatter
	RegistryStore
}

// Push sends an environment to a remote: its objects, then its layers, then its
// metadata, then (with a tag) its registry entry, so that a reader never sees metadata
// whose blobs are missing. Blobs the remote already has are not sent. Every blob
// streams from the local store. A local blob that no longer matches its key is never
// stored remotely: Push hashes it on the way and aborts the upload, or, when the remote
// verifies uploads itself (UploadVerifier), the remote refuses it.
func Push(ctx context.Context, src Source, dst PushBackend, id schema.EnvID, opts PushOptions) (PushResult, error) {
	var res PushResult
	env, meta, err := src.ReadEnv(ctx, id)
	if err != nil {
		return res, fmt.Errorf("push %s: %w", id.Short(), err)
	}
	if env.ID != id {
		return res, fmt.Errorf("push %s: local metadata names env %s: %w", id.Short(), env.ID.Short(), ErrIntegrity)
	}
	var objects []schema.Digest
	if !env.ManifestHash.IsZero() {
		objects = append(objects, env.ManifestHash)
	}
	for _, l := range env.Layers {
		refs, err := src.LayerObjects(ctx, l)
		if err != nil {
			return res, fmt.Errorf("push %s: layer %s: %w", id.Short(), l, err)
		}
		objects = append(objects, refs...)
	}
	objects = sortedUnique(objects)
	layers := slices.Clone(env.Layers)

	var sent atomic.Int64
	upload := func(kind Kind, pushed, skipped *int) func(context.Context, schema.Digest) error {
		var mu sync.Mutex
		return func(ctx context.Context, key schema.Digest) error {
			k := key.String()
			has, err := dst.HasBlob(ctx, kind, k)
			if err != nil {
				return err
			}
			if has {
				mu.Lock()
				*skipped++
				mu.Unlock()
				report(opts.Progress, Event{Kind: kind, Key: k, Size: -1, Skipped: true})
				return nil
			}
			rc, size, err := src.OpenBlob(ctx, kind, key)
			if err != nil {
				return err
			}
			defer rc.Close()
			// Hash on the way out unless the remote verifies anyway: on a small
			// machine the client's hashing competes with the server's for the CPU.
			body := io.Reader(rc)
			if v, ok := dst.(UploadVerifier); !ok || !v.UploadsVerified() {
				body = NewVerifyingReader(rc, key, k).ExpectSize(size)
			}
			if opts.Progress != nil {
				body = &progressReader{r: body, ev: Event{Kind: kind, Key: k, Size: size}, fn: opts.Progress}
			}
			if err := dst.PutBlob(ctx, kind, k, body, size); err != nil {
				return err
			}
			sent.Add(size)
			mu.Lock()
			*pushed++
			mu.Unlock()
			report(opts.Progress, Event{Kind: kind, Key: k, Bytes: size, Size: size, Done: true})
			return nil
		}
	}
	if err := forEach(ctx, opts.Jobs, objects, upload(Object, &res.ObjectsPushed, &res.ObjectsSkipped)); err != nil {
		res.BytesSent = sent.Load()
		return res, fmt.Errorf("push %s: objects: %w", id.Short(), err)
	}
	if err := forEach(ctx, opts.Jobs, layers, upload(Layer, &res.LayersPushed, &res.LayersSkipped)); err != nil {
		res.BytesSent = sent.Load()
		return res, fmt.Errorf("push %s: layers: %w", id.Short(), err)
	}
	res.BytesSent = sent.Load()
	if err := dst.PutBlob(ctx, Metadata, id.String(), bytes.NewReader(meta), int64(len(meta))); err != nil {
		return res, fmt.Errorf("push %s: metadata: %w", id.Short(), err)
	}
	res.BytesSent += int64(len(meta))
	if opts.Tag != nil {
		now := time.Now
		if opts.Now != nil {
			now = opts.Now
		}
		e := Entry{EnvID: id.String(), ShortID: env.ShortID, Name: env.Name, PushedAt: Timestamp(now())}
		if e.ShortID == "" {
			e.ShortID = id.Short()
		}
		if err := Publish(ctx, dst, *opts.Tag, e); err != nil {
			return res, fmt.Errorf("push %s: %w", id.Short(), err)
		}
	}
	return res, nil
}

// PullOptions tunes Pull.
type PullOptions struct {
	// Jobs bounds the number of blobs downloaded at once (DefaultJobs when 0 or less).
	Jobs int
	// Progress, when set, receives events.
	Progress func(Event)
}

// PullResult counts what a pull did.
type PullResult struct {
	ObjectsPulled  int   `json:"objects_pulled"`
	LayersPulled   int   `json:"layers_pulled"`
	ObjectsSkipped int   `json:"objects_skipped"`
	LayersSkipped  int   `json:"layers_skipped"`
	BytesReceived  int64 `json:"bytes_received"`
	Env            Env   `json:"-"`
}

// PullBackend is what Pull needs of a remote.
type PullBackend interface {
	BlobGetter
}

// Pull fetches an environment into a local store. The metadata must carry the
// requested id and a valid checksum; every layer and object is verified by blake3
// while it streams to disk; everything is staged in one transaction whose commit writes
// the metadata last, so an interrupted or failed pull leaves nothing visible.
func Pull(ctx context.Context, src PullBackend, dst Sink, id schema.EnvID, opts PullOptions) (res PullResult, err error) {
	metaKey := id.String()
	meta, err := getSmall(ctx, src, Metadata, metaKey, maxMetadataBytes)
	if err != nil {
		return res, fmt.Errorf("pull %s: metadata: %w", id.Short(), err)
	}
	env, err := dst.DecodeEnv(meta)
	if err != nil {
		return res, fmt.Errorf("pull %s: metadata: %w", id.Short(), err)
	}
	if env.ID != id {
		return res, fmt.Errorf("pull %s: %w", id.Short(), &IntegrityError{Key: "metadata:" + metaKey, Expected: metaKey, Actual: env.ID.String()})
	}
	res.Env = env
	res.BytesReceived = int64(len(meta))

	tx, err := dst.BeginPull(ctx, id)
	if err != nil {
		return res, fmt.Errorf("pull %s: %w", id.Short(), err)
	}
	committed := false
	defer func() {
		if !committed {
			if aerr := tx.Abort(); aerr != nil {
				err = errors.Join(err, fmt.Errorf("pull %s: abort: %w", id.Short(), aerr))
			}
		}
	}()

	var objects []schema.Digest
	if !env.ManifestHash.IsZero() {
		objects = append(objects, env.ManifestHash)
	}
	for _, l := range env.Layers {
		k := l.String()
		has, err := dst.HasBlob(ctx, Layer, l)
		if err != nil {
			return res, fmt.Errorf("pull %s: layer %s: %w", id.Short(), k, err)
		}
		if has {
			refs, err := dst.LayerObjects(ctx, l)
			if err != nil {
				return res, fmt.Errorf("pull %s: layer %s: %w", id.Short(), k, err)
			}
			objects = append(objects, refs...)
			res.LayersSkipped++
			report(opts.Progress, Event{Kind: Layer, Key: k, Size: -1, Skipped: true})
			continue
		}
		b, err := getSmall(ctx, src, Layer, k, maxLayerBytes)
		if err != nil {
			return res, fmt.Errorf("pull %s: layer %s: %w", id.Short(), k, err)
		}
		if got := schema.Sum(b); got != l {
			return res, fmt.Errorf("pull %s: %w", id.Short(), &IntegrityError{Key: k, Expected: k, Actual: got.String()})
		}
		refs, err := dst.DecodeLayer(b)
		if err != nil {
			return res, fmt.Errorf("pull %s: layer %s: %w", id.Short(), k, err)
		}
		if err := tx.PutBlob(ctx, Layer, l, bytes.NewReader(b)); err != nil {
			return res, fmt.Errorf("pull %s: layer %s: %w", id.Short(), k, err)
		}
		objects = append(objects, refs...)
		res.LayersPulled++
		res.BytesReceived += int64(len(b))
		report(opts.Progress, Event{Kind: Layer, Key: k, Bytes: int64(len(b)), Size: int64(len(b)), Done: true})
	}

	var mu sync.Mutex
	download := func(ctx context.Context, key schema.Digest) error {
		k := key.String()
		has, err := dst.HasBlob(ctx, Object, key)
		if err != nil {
			return err
		}
		if has {
			mu.Lock()
			res.ObjectsSkipped++
			mu.Unlock()
			report(opts.Progress, Event{Kind: Object, Key: k, Size: -1, Skipped: true})
			return nil
		}
		rc, err := src.GetBlob(ctx, Object, k)
		if err != nil {
			return err
		}
		defer rc.Close()
		v := NewVerifyingReader(rc, key, k)
		var body io.Reader = v
		if opts.Progress != nil {
			body = &progressReader{r: v, ev: Event{Kind: Object, Key: k, Size: -1}, fn: opts.Progress}
		}
		if err := tx.PutBlob(ctx, Object, key, body); err != nil {
			return err
		}
		mu.Lock()
		res.ObjectsPulled++
		res.BytesReceived += v.N()
		mu.Unlock()
		report(opts.Progress, Event{Kind: Object, Key: k, Bytes: v.N(), Size: v.N(), Done: true})
		return nil
	}
	if err := forEach(ctx, opts.Jobs, sortedUnique(objects), download); err != nil {
		return res, fmt.Errorf("pull %s: objects: %w", id.Short(), err)
	}
	if err := tx.Commit(ctx, env, meta); err != nil {
		return res, fmt.Errorf("pull %s: commit: %w", id.Short(), err)
	}
	committed = true
	return res, nil
}

func getSmall(ctx context.Context, src BlobGetter, kind Kind, key string, limit int64) ([]byte, error) {
	rc, err := src.GetBlob(ctx, kind, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return readLimited(rc, limit)
}

func sortedUnique(ds []schema.Digest) []schema.Digest {
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b schema.Digest) int { return bytes.Compare(a[:], b[:]) })
	return slices.Compact(ds)
}

// forEach runs fn on every item with at most jobs at once; the first error cancels the
// rest and is returned.
func forEach(ctx context.Context, jobs int, items []schema.Digest, fn func(context.Context, schema.Digest) error) error {
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, jobs)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, it); err != nil {
				once.Do(func() { first = err; cancel(err) })
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

func report(fn func(Event), e Event) {
	if fn != nil {
		fn(e)
	}
}

// progressReader reports bytes as they pass, at most once per chunk read.
type progressReader struct {
	r  io.Reader
	ev Event
	fn func(Event)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.ev.Bytes += int64(n)
		p.fn(p.ev)
	}
	return n, err
}
