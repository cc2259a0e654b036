// Package remotetest is the conformance suite of remote.Backend implementations and of
// push and pull over them. The in-memory backend runs it in package remote; the HTTP
// backend against the reference server runs it in package server.
package remotetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Harness is one backend under test.
type Harness struct {
	Backend remote.Backend
	// Tamper overwrites a stored blob behind the backend's back (a corrupt remote).
	Tamper func(kind remote.Kind, key string, data []byte)
}

// NewHarness returns a fresh, empty backend for one test.
type NewHarness func(t *testing.T) Harness

// Run runs every case of the suite.
func Run(t *testing.T, newH NewHarness) {
	t.Run("Backend", func(t *testing.T) { RunBackend(t, newH) })
	t.Run("Transfer", func(t *testing.T) { RunTransfer(t, newH) })
}

func key(b []byte) string { return schema.Sum(b).String() }

func get(t *testing.T, b remote.BlobGetter, kind remote.Kind, k string) []byte {
	t.Helper()
	rc, err := b.GetBlob(context.Background(), kind, k)
	if err != nil {
		t.Fatalf("GetBlob %s %s: %v", kind, k, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s %s: %v", kind, k, err)
	}
	return data
}

func put(t *testing.T, b remote.BlobPutter, kind remote.Kind, k string, data []byte) {
	t.Helper()
	if err := b.PutBlob(context.Background(), kind, k, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("PutBlob %s %s: %v", kind, k, err)
	}
}

func metadataBlob(id string) []byte {
	return []byte(`{"env_id": "` + id + `", "note": "suite"}`)
}

// RunBackend checks the Backend contract.
func RunBackend(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	t.Run("PutGetHasAllKinds", func(t *testing.T) {
		b := newH(t).Backend
		obj := []byte("object bytes")
		lay := []byte(`{"layer": true}`)
		id := key([]byte("some env"))
		meta := metadataBlob(id)
		for _, c := range []struct {
			kind remote.Kind
			key  string
			data []byte
		}{{remote.Object, key(obj), obj}, {remote.Layer, key(lay), lay}, {remote.Metadata, id, meta}} {
			if has, err := b.HasBlob(ctx, c.kind, c.key); err != nil || has {
				t.Fatalf("HasBlob %s before put = %v, %v; want false, nil", c.kind, has, err)
			}
			put(t, b, c.kind, c.key, c.data)
			if has, err := b.HasBlob(ctx, c.kind, c.key); err != nil || !has {
				t.Fatalf("HasBlob %s after put = %v, %v; want true, nil", c.kind, has, err)
			}
			if got := get(t, b, c.kind, c.key); !bytes.Equal(got, c.data) {
				t.Fatalf("GetBlob %s = %q, want %q", c.kind, got, c.data)
			}
		}
		// Kinds are separate namespaces.
		if has, err := b.HasBlob(ctx, remote.Layer, key(obj)); err != nil || has {
			t.Fatalf("object visible as a layer: %v, %v", has, err)
		}
	})
	t.Run("PutIsIdempotent", func(t *testing.T) {
		b := newH(t).Backend
		obj := []byte("twice")
		put(t, b, remote.Object, key(obj), obj)
		put(t, b, remote.Object, key(obj), obj)
		if got := get(t, b, remote.Object, key(obj)); !bytes.Equal(got, obj) {
			t.Fatalf("got %q", got)
		}
	})
	t.Run("EmptyBlob", func(t *testing.T) {
		b := newH(t).Backend
		put(t, b, remote.Object, key(nil), nil)
		if got := get(t, b, remote.Object, key(nil)); len(got) != 0 {
			t.Fatalf("got %d bytes", len(got))
		}
	})
	t.Run("GetMissingIsNotFound", func(t *testing.T) {
		b := newH(t).Backend
		_, err := b.GetBlob(ctx, remote.Object, key([]byte("nope")))
		if !errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("GetBlob missing: %v, want ErrNotFound", err)
		}
		_, _, err = b.GetRegistry(ctx)
		if !errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("GetRegistry missing: %v, want ErrNotFound", err)
		}
	})
	t.Run("KeyMismatchRefused", func(t *testing.T) {
		b := newH(t).Backend
		good, bad := []byte("claimed"), []byte("actual")
		for _, kind := range []remote.Kind{remote.Object, remote.Layer} {
			err := b.PutBlob(ctx, kind, key(good), bytes.NewReader(bad), int64(len(bad)))
			if !errors.Is(err, remote.ErrIntegrity) {
				t.Fatalf("PutBlob %s with wrong content: %v, want ErrIntegrity", kind, err)
			}
			if has, _ := b.HasBlob(ctx, kind, key(good)); has {
				t.Fatalf("%s stored despite the mismatch", kind)
			}
		}
		id := key([]byte("env"))
		other := key([]byte("other env"))
		if err := b.PutBlob(ctx, remote.Metadata, id, bytes.NewReader(metadataBlob(other)), -1); err == nil {
			t.Fatal("metadata naming another env accepted")
		}
		if err := b.PutBlob(ctx, remote.Metadata, id, strings.NewReader("not json"), -1); err == nil {
			t.Fatal("metadata that is not JSON accepted")
		}
		if has, _ := b.HasBlob(ctx, remote.Metadata, id); has {
			t.Fatal("bad metadata stored")
		}
	})
	t.Run("InvalidKeysRefused", func(t *testing.T) {
		b := newH(t).Backend
		for _, k := range []string{"", "../../etc/passwd", "/etc/passwd", "%2e%2e", strings.Repeat("A", 64),
			strings.Repeat("a", 63), strings.Repeat("a", 65), strings.Repeat("a", 62) + "/x", "..", "."} {
			if err := b.PutBlob(ctx, remote.Object, k, strings.NewReader("x"), 1); !errors.Is(err, remote.ErrInvalidKey) {
				t.Errorf("PutBlob %q: %v, want ErrInvalidKey", k, err)
			}
			if _, err := b.GetBlob(ctx, remote.Layer, k); !errors.Is(err, remote.ErrInvalidKey) {
				t.Errorf("GetBlob %q: %v, want ErrInvalidKey", k, err)
			}
			if _, err := b.HasBlob(ctx, remote.Metadata, k); !errors.Is(err, remote.ErrInvalidKey) {
				t.Errorf("HasBlob %q: %v, want ErrInvalidKey", k, err)
			}
		}
	})
	t.Run("ListSorted", func(t *testing.T) {
		b := newH(t).Backend
		if keys, err := b.ListBlobs(ctx, remote.Layer); err != nil || len(keys) != 0 {
			t.Fatalf("ListBlobs empty = %v, %v", keys, err)
		}
		var want []string
		for i := range 5 {
			data := fmt.Appendf(nil, "blob %d", i)
			put(t, b, remote.Object, key(data), data)
			want = append(want, key(data))
		}
		keys, err := b.ListBlobs(ctx, remote.Object)
		if err != nil {
			t.Fatal(err)
		}
		sorted := append([]string(nil), want...)
		sortStrings(sorted)
		if fmt.Sprint(keys) != fmt.Sprint(sorted) {
			t.Fatalf("ListBlobs = %v, want %v", keys, sorted)
		}
	})
	t.Run("LargeBlobStreams", func(t *testing.T) {
		b := newH(t).Backend
		data := make([]byte, 9<<20+123)
		for i := range data {
			data[i] = byte(i * 7 / 3)
		}
		put(t, b, remote.Object, key(data), data)
		if got := get(t, b, remote.Object, key(data)); !bytes.Equal(got, data) {
			t.Fatal("large blob differs after roundtrip")
		}
	})
	t.Run("ConcurrentPuts", func(t *testing.T) {
		b := newH(t).Backend
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for c := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					data := fmt.Appendf(nil, "client %d blob %d", c, i)
					if err := b.PutBlob(ctx, remote.Object, key(data), bytes.NewReader(data), int64(len(data))); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		keys, err := b.ListBlobs(ctx, remote.Object)
		if err != nil || len(keys) != 40 {
			t.Fatalf("ListBlobs = %d keys, %v; want 40", len(keys), err)
		}
	})
	t.Run("RegistryVersions", func(t *testing.T) {
		b := newH(t).Backend
		r1 := mustRegistry(t, map[string]string{"a@latest": key([]byte("a"))})
		r2 := mustRegistry(t, map[string]string{"b@latest": key([]byte("b"))})
		if err := b.PutRegistry(ctx, r1, remote.NoRegistry); err != nil {
			t.Fatalf("create registry: %v", err)
		}
		if err := b.PutRegistry(ctx, r2, remote.NoRegistry); !errors.Is(err, remote.ErrConflict) {
			t.Fatalf("second create: %v, want ErrConflict", err)
		}
		data, v1, err := b.GetRegistry(ctx)
		if err != nil || !bytes.Equal(data, r1) {
			t.Fatalf("GetRegistry = %q, %v", data, err)
		}
		if v1 == "" {
			t.Fatal("no registry version")
		}
		if err := b.PutRegistry(ctx, r2, v1); err != nil {
			t.Fatalf("conditional put: %v", err)
		}
		if err := b.PutRegistry(ctx, r1, v1); !errors.Is(err, remote.ErrConflict) {
			t.Fatalf("stale conditional put: %v, want ErrConflict", err)
		}
		if err := b.PutRegistry(ctx, r1, ""); err != nil {
			t.Fatalf("unconditional put: %v", err)
		}
		if err := b.PutRegistry(ctx, []byte(`{"entries": {"x@y": {"env_id": "../x"}}}`), ""); err == nil {
			t.Fatal("invalid registry accepted")
		}
		if data, _, _ := b.GetRegistry(ctx); !bytes.Equal(data, r1) {
			t.Fatalf("registry after refused put = %q", data)
		}
	})
	t.Run("ConcurrentPublishKeepsAllEntries", func(t *testing.T) {
		b := newH(t).Backend
		var wg sync.WaitGroup
		var failed atomic.Int32
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ref := remote.Ref{Name: fmt.Sprintf("env%d", i), Tag: "latest"}
				e := remote.Entry{EnvID: key(fmt.Appendf(nil, "%d", i)), ShortID: "x", PushedAt: remote.Timestamp(time.Now())}
				if err := remote.Publish(ctx, b, ref, e); err != nil {
					t.Errorf("Publish %s: %v", ref, err)
					failed.Add(1)
				}
			}()
		}
		wg.Wait()
		data, _, err := b.GetRegistry(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := remote.ParseRegistry(data)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Entries) != 8 {
			t.Fatalf("registry has %d entries after 8 concurrent publishes: %v", len(r.Entries), r.Entries)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		b := newH(t).Backend
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		data := []byte("cancelled")
		if err := b.PutBlob(cctx, remote.Object, key(data), bytes.NewReader(data), int64(len(data))); !errors.Is(err, context.Canceled) {
			t.Fatalf("PutBlob with cancelled context: %v", err)
		}
	})
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

func mustRegistry(t *testing.T, m map[string]string) []byte {
	t.Helper()
	r := &remote.Registry{Entries: map[string]remote.Entry{}}
	for k, id := range m {
		r.Entries[k] = remote.Entry{EnvID: id, ShortID: id[:12], PushedAt: "2025-01-01T00:00:00+00:00"}
	}
	b, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Counting wraps a Backend and counts the blobs it was asked to store.
type Counting struct {
	remote.Backend
	Puts atomic.Int64
}

// PutBlob counts, then delegates.
func (c *Counting) PutBlob(ctx context.Context, kind remote.Kind, k string, r io.Reader, size int64) error {
	c.Puts.Add(1)
	return c.Backend.PutBlob(ctx, kind, k, r, size)
}

// Fixture is a small environment in a local store: a manifest object, a base layer
// whose tar object is Tar, and a dependency layer with a second object.
type Fixture struct {
	Store  *store.Store
	ID     schema.EnvID
	Tar    []byte
	TarKey schema.Digest
	Extra  []byte
	Layers []schema.Digest
}

// NewFixture builds a store in a temp dir holding one environment named name; size is
// the size of its tar object.
func NewFixture(t testing.TB, name string, size int) Fixture {
	t.Helper()
	tar := make([]byte, size)
	for i := range tar {
		tar[i] = byte(i*31 + len(name))
	}
	f := NewFixtureFrom(t, name, bytes.NewReader(tar))
	f.Tar = tar
	return f
}

// NewFixtureFrom is NewFixture with the tar object streamed from r (Fixture.Tar stays
// nil), for sizes that should not sit in memory.
func NewFixtureFrom(t testing.TB, name string, r io.Reader) Fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	manifest := []byte("manifest of " + name)
	extra := []byte("dependency of " + name)
	var ds [3]schema.Digest
	if ds[0], err = st.Objects.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	for i, b := range [][]byte{manifest, extra} {
		if ds[i+1], err = st.Objects.PutBytes(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	base, err := st.Layers.Put(ctx, store.Layer{Hash: ds[0], Kind: store.KindBase, ObjectRefs: []schema.Digest{ds[0]}, ReadOnly: true, TarHash: ds[0]})
	if err != nil {
		t.Fatal(err)
	}
	dep, err := st.Layers.Put(ctx, store.Layer{Hash: ds[2], Kind: store.KindDependency, Parent: base, ObjectRefs: []schema.Digest{ds[2], ds[0]}, ReadOnly: true, TarHash: ds[2]})
	if err != nil {
		t.Fatal(err)
	}
	id := schema.SumString("env " + name)
	m := store.Metadata{
		EnvID: id, ShortID: id.Short(), Name: name, State: store.StateBuilt,
		ManifestHash: ds[1], BaseLayer: base, DependencyLayers: []schema.Digest{dep},
		CreatedAt: "2025-01-01T00:00:00Z", UpdatedAt: "2025-01-01T00:00:00Z", RefCount: 1,
	}
	if err := st.Envs.Put(ctx, m); err != nil {
		t.Fatal(err)
	}
	return Fixture{Store: st, ID: id, TarKey: ds[0], Extra: extra, Layers: []schema.Digest{base, dep}}
}

// EmptyStore opens a fresh local store in a temp dir.
func EmptyStore(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// CheckPulled verifies that dst holds env id completely and intact: metadata, layers,
// objects, and a clean integrity report.
func CheckPulled(t testing.TB, src, dst *store.Store, id schema.EnvID) {
	t.Helper()
	ctx := context.Background()
	want, err := src.Envs.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	got, err := dst.Envs.Get(ctx, id)
	if err != nil {
		t.Fatalf("pulled metadata: %v", err)
	}
	if got.Name != want.Name || got.ManifestHash != want.ManifestHash || got.BaseLayer != want.BaseLayer || fmt.Sprint(got.DependencyLayers) != fmt.Sprint(want.DependencyLayers) {
		t.Fatalf("pulled metadata %+v differs from %+v", got, want)
	}
	objs, err := src.Objects.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := dst.Objects.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(objs) != fmt.Sprint(pulled) {
		t.Fatalf("pulled objects %v, want %v", pulled, objs)
	}
	rep, err := dst.Verify(ctx)
	if err != nil {
		t.Fatalf("verify pulled store: %v", err)
	}
	if len(rep.Failed) != 0 {
		t.Fatalf("verify pulled store: %+v", rep.Failed)
	}
}
