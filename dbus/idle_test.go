package dbus

import (
	"context"
	"testing"
	"time"
)

func TestIdleTimer(t *testing.T) {
	const d = 150 * time.Millisecond
	it := newIdleTimer(d)
	waited := make(chan time.Time, 1)
	start := time.Now()
	go func() {
		if err := it.wait(context.Background()); err != nil {
			t.Errorf("wait: %v", err)
		}
		waited <- time.Now()
	}()
	// Touches every 50 ms hold it off, and so does running work.
	for range 6 {
		time.Sleep(50 * time.Millisecond)
		it.touch()
	}
	end := it.begin()
	time.Sleep(3 * d)
	select {
	case <-waited:
		t.Fatal("idle while work was running")
	default:
	}
	endAt := time.Now()
	end()
	end() // twice is harmless
	at := <-waited
	if at.Sub(endAt) < d || at.Sub(start) < 300*time.Millisecond+3*d {
		t.Fatalf("idle %s after the work ended, want >= %s", at.Sub(endAt), d)
	}
	if it.running() != 0 {
		t.Fatalf("running = %d", it.running())
	}

	// No timeout: only ctx ends the wait.
	never := newIdleTimer(0)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := never.wait(ctx); err != context.DeadlineExceeded {
		t.Fatalf("wait without timeout: %v", err)
	}
}
