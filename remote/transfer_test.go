package remote_test

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/remote/remotetest"
)

// slowBackend records how many uploads run at once.
type slowBackend struct {
	remote.Backend
	mu        sync.Mutex
	inflight  int
	maxFlight int
}

func (s *slowBackend) PutBlob(ctx context.Context, kind remote.Kind, key string, r io.Reader, size int64) error {
	s.mu.Lock()
	s.inflight++
	s.maxFlight = max(s.maxFlight, s.inflight)
	s.mu.Unlock()
	time.Sleep(200 * time.Millisecond) // long enough that a loaded machine still overlaps them
	err := s.Backend.PutBlob(ctx, kind, key, r, size)
	s.mu.Lock()
	s.inflight--
	s.mu.Unlock()
	return err
}

func TestPushUploadsInParallelBounded(t *testing.T) {
	ctx := context.Background()
	for _, jobs := range []int{1, 2} {
		b := &slowBackend{Backend: remote.NewMemory()}
		f := remotetest.NewFixture(t, "par", 1000)
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), b, f.ID, remote.PushOptions{Jobs: jobs}); err != nil {
			t.Fatal(err)
		}
		if b.maxFlight != jobs {
			t.Fatalf("Jobs=%d: %d uploads at once", jobs, b.maxFlight)
		}
	}
}

func TestPulledNameClashIsDropped(t *testing.T) {
	ctx := context.Background()
	b := remote.NewMemory()
	a := remotetest.NewFixture(t, "same", 100)
	if _, err := remote.Push(ctx, remote.NewLocal(a.Store, nil), b, a.ID, remote.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	// dst already has another environment called "same".
	other := remotetest.NewFixture(t, "other", 100)
	if err := other.Store.Envs.SetName(ctx, other.ID, "same"); err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Pull(ctx, b, remote.NewLocal(other.Store, nil), a.ID, remote.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	m, err := other.Store.Envs.Get(ctx, a.ID)
	if err != nil || m.Name != "" {
		t.Fatalf("pulled env name = %q, %v; want it dropped", m.Name, err)
	}
	// Into a store without the clash, the name stays.
	dst := remotetest.EmptyStore(t)
	if _, err := remote.Pull(ctx, b, remote.NewLocal(dst, nil), a.ID, remote.PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if m, _ := dst.Envs.Get(ctx, a.ID); m.Name != "same" {
		t.Fatalf("pulled name = %q", m.Name)
	}
}
