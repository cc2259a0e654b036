package core

import (
	"context"

	"fmt"
	"time"
)

// tryLockFunc makes one non-blocking attempt at the store lock. It returns the release
// function, or an error; held reports that the error only means "someone else holds
// it" (then holder describes them when known).
type tryLockFunc func() (release func(), held bool, holder string, err error)

// waitLock takes the lock with try, polling while someone else holds it. After
// LockNotice it calls OnLockWait once; after LockTimeout (if any) it gives up with an
// error wrapping ErrLockTimeout; cancelling ctx gives up with ctx's error.
func (e *Engine) waitLock(ctx context.Context, op string, try tryLockFunc) (func(), error) {
	start := time.Now()
	noticed := false
	delay := 2 * time.Millisecond
	for {
		release, held, holder, err := try()
		if err == nil {
			return release, nil
		}
		if !held {
			return nil, err
		}
		waited := time.Since(start)
		if e.opts.LockTimeout > 0 && waited >= e.opts.LockTimeout {
			w := LockWait{Op: op, Holder: holder, Waited: waited}
			return nil, fmt.Errorf("%w after %s (%s)", ErrLockTimeout, e.opts.LockTimeout, w)
		}
		if !noticed && waited >= e.opts.LockNotice {
			noticed = true
			e.log.Info("waiting for the store lock", "op", op, "holder", holder)
			if e.opts.OnLockWait != nil {
				e.opts.OnLockWait(LockWait{Op: op, Holder: holder, Waited: waited})
			}
		}
		sleep := delay
		if e.opts.LockTimeout > 0 {
			if left := e.opts.LockTimeout - waited; left < sleep {
				sleep = left
			}
		}
		t := time.NewTimer(sleep)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}
