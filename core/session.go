package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// Enter runs an interactive session (argv, or the login shell when empty) and returns
// its exit status. The environment must be Built or Running; it is Running while any
// session is live. The store lock is held only to record the session and to end it,
// never while the session runs.
func (e *Engine) Enter(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string) (int, error) {
	return e.session(ctx, "enter", id, func(b runtime.Backend, spec *runtime.Spec) (int, error) {
		return b.Enter(ctx, spec, stdio, argv)
	})
}

// Exec runs argv in the environment with streamed stdio and returns its exit status
// (128+n when killed by signal n). A non-zero status is not an error. State handling is
// Enter's.
func (e *Engine) Exec(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, classify(ErrRuntime, fmt.Errorf("%w: no command given", runtime.ErrExecFailed))
	}
	return e.session(ctx, "exec", id, func(b runtime.Backend, spec *runtime.Spec) (int, error) {
		return b.Exec(ctx, spec, stdio, argv)
	})
}

// session records a session under the lock, runs it without the lock, then ends it
// under the lock: the last session to end puts a Running environment back to Built (a
// Frozen one stays Frozen).
func (e *Engine) session(ctx context.Context, op string, id schema.EnvID, run func(runtime.Backend, *runtime.Spec) (int, error)) (int, error) {
	var (
		claim string
		spec  *runtime.Spec
		b     runtime.Backend
	)
	err := e.withLock(ctx, op, func() error {
		m, err := e.get(ctx, id)
		if err != nil {
			return err
		}
		if err := checkTransition(m.State, Running); err != nil {
			return err
		}
		if spec, b, err = e.envSpec(ctx, m); err != nil {
			return err
		}
		if claim, err = addClaim(spec.EnvDir); err != nil {
			return classify(ErrStore, err)
		}
		if m.State != Running {
			if err := e.st.setState(ctx, m, Running); err != nil {
				_ = os.Remove(claim)
				return classify(ErrStore, err)
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	status, runErr := run(b, spec)
	// Ending the session must happen even when ctx was cancelled (^C).
	endErr := e.endSession(context.WithoutCancel(ctx), op, id, claim)
	if runErr != nil {
		return status, classify(ErrRuntime, runErr)
	}
	return status, endErr
}

// endSession drops the session's claim (ours alone, so no lock is needed for that),
// then settles the state under the lock. If the lock cannot be had in time, the next
// lock holder's recovery settles it: the session is over either way, so that is logged,
// not returned.
func (e *Engine) endSession(ctx context.Context, op string, id schema.EnvID, claim string) error {
	if err := os.Remove(claim); err != nil && !os.IsNotExist(err) {
		return classify(ErrStore, err)
	}
	err := e.withLock(ctx, op, func() error { return e.settle(ctx, id) })
	if errors.Is(err, ErrLockTimeout) {
		e.log.Warn("session ended; its state is settled by the next lock holder", "env", id.Short(), "err", err)
		return nil
	}
	return err
}

// settle puts a Running environment without live sessions back to Built. The caller
// holds the lock.
func (e *Engine) settle(ctx context.Context, id schema.EnvID) error {
	live, err := liveClaims(e.layout.EnvPath(id))
	if err != nil {
		return classify(ErrStore, err)
	}
	if live > 0 {
		return nil
	}
	m, err := e.get(ctx, id)
	if err != nil {
		return err
	}
	if m.State != Running {
		return nil
	}
	return classify(ErrStore, e.st.setState(ctx, m, Built))
}

// Stop ends every live session of an environment: SIGTERM, then SIGKILL after
// Options.StopGrace. A Frozen environment with live sessions can be stopped too; a
// Running one whose sessions all died is simply put back to Built. An environment with
// no session gives an error wrapping runtime.ErrNotRunning. Stop takes the lock only to
// settle the state at the end.
func (e *Engine) Stop(ctx context.Context, id schema.EnvID) error {
	m, err := e.get(ctx, id)
	if err != nil {
		return err
	}
	envDir := e.layout.EnvPath(id)
	live, err := liveClaims(envDir)
	if err != nil {
		return classify(ErrStore, err)
	}
	spec, b, specErr := e.envSpec(ctx, m)
	running := false
	if specErr == nil {
		st, err := b.Status(ctx, spec)
		if err != nil {
			return classify(ErrRuntime, err)
		}
		running = st.Running
	}
	if m.State != Running && live == 0 && !running {
		return classify(ErrRuntime, withMsg(runtime.ErrNotRunning, "environment '%s' is not running", id))
	}
	if running {
		// Sessions may end on their own between Status and Stop.
		if err := b.Stop(ctx, spec, e.opts.StopGrace); err != nil && !errors.Is(err, runtime.ErrNotRunning) {
			return classify(ErrRuntime, err)
		}
	}
	// The processes that ran the sessions end them themselves, once their session
	// process is gone; give them a moment, then settle whatever is left (a crashed
	// frontend's session).
	deadline := time.Now().Add(e.opts.StopGrace + 2*time.Second)
	for live > 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if live, err = liveClaims(envDir); err != nil {
			return classify(ErrStore, err)
		}
	}
	return e.withLock(ctx, "stop", func() error { return e.settle(ctx, id) })
}
