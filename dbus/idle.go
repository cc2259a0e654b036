package dbus

import (
	"context"
	"sync"
	"time"
)

// idleTimer tracks activity: the service is idle once no work is running and nothing
// happened for the timeout. Any incoming call touches it; calls and background work
// (a build, a notification being sent) hold it busy between begin and end.
type idleTimer struct {
	timeout time.Duration // 0: never idle

	mu     sync.Mutex
	active int
	last   time.Time
	kick   chan struct{} // wakes wait when the state changed
}

func newIdleTimer(timeout time.Duration) *idleTimer {
	return &idleTimer{timeout: timeout, last: time.Now(), kick: make(chan struct{}, 1)}
}

// touch records activity now.
func (t *idleTimer) touch() {
	t.mu.Lock()
	t.last = time.Now()
	t.mu.Unlock()
	t.wake()
}

// begin marks work as running until the returned function is called.
func (t *idleTimer) begin() (end func()) {
	t.mu.Lock()
	t.active++
	t.last = time.Now()
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			t.active--
			t.last = time.Now()
			t.mu.Unlock()
			t.wake()
		})
	}
}

// running returns how much work is running.
func (t *idleTimer) running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.active
}

func (t *idleTimer) wake() {
	select {
	case t.kick <- struct{}{}:
	default:
	}
}

// wait returns nil once the service has been idle for the timeout, or ctx's error.
// With no timeout it waits for ctx only.
func (t *idleTimer) wait(ctx context.Context) error {
	if t.timeout <= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	for {
		t.mu.Lock()
		left := t.timeout - time.Since(t.last)
		if t.active > 0 {
			left = t.timeout
		}
		idle := t.active == 0 && left <= 0
		t.mu.Unlock()
		if idle {
			return nil
		}
		timer := time.NewTimer(left)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-t.kick:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// drain waits until no work is running (or ctx ends).
func (t *idleTimer) drain(ctx context.Context) {
	for t.running() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		case <-time.After(50 * time.Millisecond):
		}
	}
}
