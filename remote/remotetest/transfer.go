package remotetest

import (
	"context"
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// RunTransfer checks Push and Pull over a backend, with real local stores.
func RunTransfer(t *testing.T, newH NewHarness) {
	ctx := context.Background()
	t.Run("PushPullByTagNameAndID", func(t *testing.T) {
		h := newH(t)
		f := NewFixture(t, "myapp", 3<<20+5)
		tag := remote.Ref{Name: "myapp", Tag: "v1"}
		var events sync.Map
		res, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{
			Tag: &tag, Progress: func(e remote.Event) { events.Store(e.Key, e) },
		})
		if err != nil {
			t.Fatalf("Push: %v", err)
		}
		if res.ObjectsPushed != 3 || res.LayersPushed != 2 || res.ObjectsSkipped != 0 || res.LayersSkipped != 0 {
			t.Fatalf("Push result %+v, want 3 objects and 2 layers pushed", res)
		}
		if e, ok := events.Load(schema.Sum(f.Tar).String()); !ok || !e.(remote.Event).Done {
			t.Fatalf("no Done progress event for the tar object: %+v", e)
		}
		latest := remote.Ref{Name: "myapp", Tag: remote.DefaultTag}
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{Tag: &latest}); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"myapp@v1", "myapp", "myapp@latest", f.ID.String()} {
			id, err := remote.Resolve(ctx, h.Backend, ref)
			if err != nil || id != f.ID {
				t.Fatalf("Resolve(%q) = %s, %v; want %s", ref, id.Short(), err, f.ID.Short())
			}
			dst := EmptyStore(t)
			pres, err := remote.Pull(ctx, h.Backend, remote.NewLocal(dst, nil), id, remote.PullOptions{})
			if err != nil {
				t.Fatalf("Pull %q: %v", ref, err)
			}
			if pres.ObjectsPulled != 3 || pres.LayersPulled != 2 {
				t.Fatalf("Pull result %+v, want 3 objects and 2 layers", pres)
			}
			CheckPulled(t, f.Store, dst, f.ID)
			assertNoStaging(t, dst.Layout.StagingDir())
		}
		if _, err := remote.Resolve(ctx, h.Backend, "other@latest"); !errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("Resolve unknown: %v, want ErrNotFound", err)
		}
	})
	t.Run("RepushSendsNothing", func(t *testing.T) {
		h := newH(t)
		c := &Counting{Backend: h.Backend}
		f := NewFixture(t, "again", 1<<20)
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		first := c.Puts.Load()
		res, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ObjectsPushed != 0 || res.LayersPushed != 0 || res.ObjectsSkipped != 3 || res.LayersSkipped != 2 {
			t.Fatalf("re-push result %+v", res)
		}
		if n := c.Puts.Load() - first; n != 1 {
			t.Fatalf("re-push stored %d blobs, want 1 (the metadata)", n)
		}
	})
	t.Run("PullSkipsWhatIsLocal", func(t *testing.T) {
		h := newH(t)
		f := NewFixture(t, "skip", 1000)
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		res, err := remote.Pull(ctx, h.Backend, remote.NewLocal(f.Store, nil), f.ID, remote.PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.ObjectsPulled != 0 || res.LayersPulled != 0 || res.ObjectsSkipped != 3 || res.LayersSkipped != 2 {
			t.Fatalf("Pull into the source store: %+v", res)
		}
	})
	t.Run("CorruptObjectDetected", func(t *testing.T) {
		h := newH(t)
		if h.Tamper == nil {
			t.Skip("backend cannot be tampered with")
		}
		f := NewFixture(t, "corrupt", 2<<20)
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		bad := append([]byte(nil), f.Tar...)
		bad[len(bad)/2] ^= 1
		h.Tamper(remote.Object, schema.Sum(f.Tar).String(), bad)
		dst := EmptyStore(t)
		_, err := remote.Pull(ctx, h.Backend, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{})
		if !errors.Is(err, remote.ErrIntegrity) {
			t.Fatalf("Pull of a corrupt object: %v, want ErrIntegrity", err)
		}
		assertNothingVisible(t, dst, f.ID)
	})
	t.Run("CorruptLayerAndMetadataDetected", func(t *testing.T) {
		h := newH(t)
		if h.Tamper == nil {
			t.Skip("backend cannot be tampered with")
		}
		f := NewFixture(t, "corrupt2", 100)
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		m, _ := f.Store.Envs.Get(ctx, f.ID)
		b, _ := m.Encode()
		tampered := append([]byte(nil), b...)
		// Same JSON shape, other name: the checksum no longer matches.
		tampered = []byte(replaceOnce(string(tampered), `"corrupt2"`, `"corrupt3"`))
		h.Tamper(remote.Metadata, f.ID.String(), tampered)
		dst := EmptyStore(t)
		if _, err := remote.Pull(ctx, h.Backend, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{}); !errors.Is(err, remote.ErrIntegrity) && !isStoreIntegrity(err) {
			t.Fatalf("Pull with a tampered metadata checksum: %v, want an integrity error", err)
		}
		h.Tamper(remote.Metadata, f.ID.String(), b)
		h.Tamper(remote.Layer, f.Layers[1].String(), []byte(`{"hash": "x"}`))
		if _, err := remote.Pull(ctx, h.Backend, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{}); !errors.Is(err, remote.ErrIntegrity) {
			t.Fatalf("Pull with a corrupt layer: %v, want ErrIntegrity", err)
		}
		assertNothingVisible(t, dst, f.ID)
		// Metadata stored under another env's id is refused.
		other := schema.SumString("other")
		h.Tamper(remote.Metadata, other.String(), b)
		if _, err := remote.Pull(ctx, h.Backend, remote.NewLocal(dst, nil), other, remote.PullOptions{}); !errors.Is(err, remote.ErrIntegrity) {
			t.Fatalf("Pull of metadata naming another env: %v, want ErrIntegrity", err)
		}
	})
	t.Run("PullMissingEnv", func(t *testing.T) {
		h := newH(t)
		_, err := remote.Pull(ctx, h.Backend, remote.NewLocal(EmptyStore(t), nil), schema.SumString("none"), remote.PullOptions{})
		if !errors.Is(err, remote.ErrNotFound) {
			t.Fatalf("Pull of a missing env: %v, want ErrNotFound", err)
		}
	})
	t.Run("CancelledPullLeavesNothing", func(t *testing.T) {
		h := newH(t)
		f := NewFixture(t, "cancel", 4<<20)
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{}); err != nil {
			t.Fatal(err)
		}
		dst := EmptyStore(t)
		cctx, cancel := context.WithCancel(ctx)
		_, err := remote.Pull(cctx, h.Backend, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{
			Progress: func(e remote.Event) {
				if e.Kind == remote.Object && e.Bytes > 0 {
					cancel()
				}
			},
		})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Pull: %v, want context.Canceled", err)
		}
		assertNothingVisible(t, dst, f.ID)
		assertNoStaging(t, dst.Layout.StagingDir())
	})
	t.Run("TwoConcurrentPushes", func(t *testing.T) {
		h := newH(t)
		a, b := NewFixture(t, "alpha", 1<<20), NewFixture(t, "beta", 1<<20)
		var wg sync.WaitGroup
		for _, f := range []Fixture{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ref, err := remote.ParseRef(mustName(t, f))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{Tag: &ref}); err != nil {
					t.Errorf("Push %s: %v", ref, err)
				}
			}()
		}
		wg.Wait()
		for _, f := range []Fixture{a, b} {
			id, err := remote.Resolve(ctx, h.Backend, mustName(t, f))
			if err != nil || id != f.ID {
				t.Fatalf("Resolve %s after concurrent pushes: %s, %v", mustName(t, f), id.Short(), err)
			}
		}
	})
	t.Run("PushOfCorruptLocalObjectAborts", func(t *testing.T) {
		h := newH(t)
		f := NewFixture(t, "localrot", 3<<20)
		bad := append([]byte(nil), f.Tar...)
		bad[len(bad)-1] ^= 1
		if err := os.WriteFile(f.Store.Objects.Path(f.TarKey), bad, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), h.Backend, f.ID, remote.PushOptions{})
		if !errors.Is(err, remote.ErrIntegrity) {
			t.Fatalf("push of a corrupt local object: %v, want ErrIntegrity", err)
		}
		if has, err := h.Backend.HasBlob(ctx, remote.Object, f.TarKey.String()); err != nil || has {
			t.Fatalf("corrupt object reached the remote (%v)", err)
		}
		if has, _ := h.Backend.HasBlob(ctx, remote.Metadata, f.ID.String()); has {
			t.Fatal("metadata pushed although an object failed")
		}
	})
	t.Run("PushOfMissingLocalEnv", func(t *testing.T) {
		h := newH(t)
		_, err := remote.Push(ctx, remote.NewLocal(EmptyStore(t), nil), h.Backend, schema.SumString("none"), remote.PushOptions{})
		if err == nil {
			t.Fatal("Push of a missing env succeeded")
		}
	})
}

func mustName(t testing.TB, f Fixture) string {
	m, err := f.Store.Envs.Get(context.Background(), f.ID)
	if err != nil {
		t.Fatal(err)
	}
	return m.Name
}

func replaceOnce(s, old, new string) string {
	for i := 0; i+len(old) <= len(s); i++ {
		if s[i:i+len(old)] == old {
			return s[:i] + new + s[i+len(old):]
		}
	}
	return s
}

func isStoreIntegrity(err error) bool { return errors.Is(err, store.ErrIntegrity) }

// assertNothingVisible fails if dst shows env id or any object or layer.
func assertNothingVisible(t testing.TB, dst *store.Store, id schema.EnvID) {
	t.Helper()
	ctx := context.Background()
	if ok, err := dst.Envs.Exists(ctx, id); err != nil || ok {
		t.Fatalf("env %s visible after a failed pull (%v)", id.Short(), err)
	}
	objs, err := dst.Objects.List(ctx)
	if err != nil || len(objs) != 0 {
		t.Fatalf("objects visible after a failed pull: %v %v", objs, err)
	}
	layers, err := dst.Layers.List(ctx)
	if err != nil || len(layers) != 0 {
		t.Fatalf("layers visible after a failed pull: %v %v", layers, err)
	}
}

func assertNoStaging(t testing.TB, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("staging not cleaned: %v", ents)
	}
}
