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
	time.Sleep(30 * time.Millisecond)
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
