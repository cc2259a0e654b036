package store_test

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/store"
)

func TestLockSharedAndExclusive(t *testing.T) {
	l := store.NewLayout(t.TempDir())
	r1, err := l.TryLock(store.Shared)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.TryLock(store.Shared)
	if err != nil {
		t.Fatalf("second reader refused: %v", err)
	}
	_, err = l.TryLock(store.Exclusive)
	var le *store.LockedError
	if !errors.As(err, &le) || !errors.Is(err, store.ErrLocked) || !errors.Is(err, store.ErrStore) {
		t.Fatalf("writer vs readers: %v", err)
	}
	_ = r1.Unlock()
	_ = r2.Unlock()
	w, err := l.TryLock(store.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.TryLock(store.Shared)
	if !errors.As(err, &le) || !strings.Contains(le.Holder, "pid "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("reader vs writer: %v", err)
	}
	fi, err := os.Stat(l.LockFile())
	if err != nil || fi.Size() != 0 {
		t.Fatalf("lock file must stay empty (the original's): %v %v", fi.Size(), err)
	}
	// A blocking caller waits, and gives up when its context ends.
	// start is taken before the deadline is set, so it is at least 100 ms before the
	// deadline however the scheduler delays this goroutine.
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, store.Exclusive); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked Lock = %v", err)
	}
	if time.Since(start) < 100*time.Millisecond {
		t.Fatal("Lock gave up before its deadline")
	}
	// And gets the lock once it is released.
	done := make(chan error, 1)
	go func() {
		lk, err := l.Lock(context.Background(), store.Exclusive)
		if err == nil {
			err = lk.Unlock()
		}
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = w.Unlock()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waiting Lock never acquired a released lock")
	}
	if _, err := os.Stat(l.LockFile() + ".holder"); err == nil {
		t.Fatal("holder note left after unlock")
	}
}
