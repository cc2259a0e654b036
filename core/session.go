package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// SessionOptions are what the caller adds to one session: variables (`exec -e K=V`,
// the deny list still applies) and the SSH agent (an explicit opt-in).
type SessionOptions struct {
	Env      map[string]string
	SSHAgent bool
}

// Enter runs an interactive session (argv, or the login shell when empty) and returns
// its exit status. The environment must be Built or Running; it is Running while any
// session is live. The store lock is held only to record the session and to end it,
// never while the session runs.
func (e *Engine) Enter(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string) (int, error) {
	return e.EnterWith(ctx, id, stdio, argv, SessionOptions{})
}

// EnterWith is Enter with the caller's additions to the session.
func (e *Engine) EnterWith(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string, o SessionOptions) (int, error) {
	return e.session(ctx, "enter", id, func(b runtime.Backend, spec *runtime.Spec) (int, error) {
		spec.Env, spec.SSHAgent = o.Env, o.SSHAgent
		return b.Enter(ctx, spec, stdio, argv)
	})
}

// Exec runs argv in the environment with streamed stdio and returns its exit status
// (128+n when killed by signal n). A non-zero status is not an error. State handling is
// Enter's.
func (e *Engine) Exec(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string) (int, error) {
	return e.ExecWith(ctx, id, stdio, argv, SessionOptions{})
}

// ExecWith is Exec with the caller's additions to the session.
func (e *Engine) ExecWith(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string, o SessionOptions) (int, error) {
	if len(argv) == 0 {
		return 0, classify(ErrRuntime, fmt.Errorf("%w: no command given", runtime.ErrExecFailed))
	}
	return e.session(ctx, "exec", id, func(b runtime.Backend, spec *runtime.Spec) (int, error) {
		spec.Env, spec.SSHAgent = o.Env, o.SSHAgent
		return b.Exec(ctx, spec, stdio, argv)
	})
}

// session records a session under the lock, runs it without the lock, then drops its
// claim. The environment is Running while any claim of a live process exists: that is
// derived when the state is read (liveState), never written, so a session changes
// nothing in the store but its claim file.
func (e *Engine) session(ctx context.Context, op string, id schema.EnvID, run func(runtime.Backend, *runtime.Spec) (int, error)) (int, error) {
	var (
		claim string
		spec  *runtime.Spec
		b     runtime.Backend
	)
	err := e.withEnvLock(ctx, op, id, func() error {
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
		if op == "exec" {
			spec.FastExec = e.fastExec(m)
		}
		if claim, err = addClaim(spec.EnvDir); err != nil {
			return classify(ErrStore, err)
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

// fastExec is what the engine vouches for on an exec session (see runtime.FastExec):
// the record as it is now, and where the store lock, the WAL and the claims live. Nil
// when the record cannot be read as bytes (the fast path is then simply not offered).
func (e *Engine) fastExec(m *Env) *runtime.FastExec {
	path := e.st.metaPath(m.EnvID)
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	fx := &runtime.FastExec{
		MetaPath:  path,
		Meta:      raw,
		LockFile:  e.layout.LockFile(),
		WALDir:    e.layout.WALDir(),
		ClaimsDir: claimsDir(e.layout.EnvPath(m.EnvID)),
	}
	if m.Name != nil {
		fx.Name = *m.Name
	}
	return fx
}

// endSession drops the session's claim (ours alone, so no lock is needed for that). A
// record that still says Running (written by an older version) is settled under the
// lock; if the lock cannot be had in time, the next lock holder's recovery settles it.
func (e *Engine) endSession(ctx context.Context, op string, id schema.EnvID, claim string) error {
	if err := os.Remove(claim); err != nil && !os.IsNotExist(err) {
		return classify(ErrStore, err)
	}
	if m, err := e.st.metaGetRecorded(ctx, id); err != nil || m.State != Running {
		return nil
	}
	err := e.withLock(ctx, op, func() error { return e.settle(ctx, id) })
	if errors.Is(err, ErrLockTimeout) {
		e.log.Warn("session ended; its state is settled by the next lock holder", "env", id.Short(), "err", err)
		return nil
	}
	return err
}

// settle rewrites a record that says Running as Built once no session is live. The
// caller holds the lock.
func (e *Engine) settle(ctx context.Context, id schema.EnvID) error {
	live, err := liveClaims(e.layout.EnvPath(id))
	if err != nil {
		return classify(ErrStore, err)
	}
	if live > 0 {
		return nil
	}
	m, err := e.st.metaGetRecorded(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return classify(ErrStore, err)
	}
	if m.State != Running {
		return nil
	}
	return classify(ErrStore, e.st.setState(ctx, m, Built))
}

// Stop ends every live session of an environment: SIGTERM, then SIGKILL after
// Options.StopGrace. A Frozen environment with live sessions can be stopped too; a
// record that says Running although its sessions all died is simply put back to Built. An environment with
// no session gives an error wrapping runtime.ErrNotRunning. Stop takes the lock only to
// settle the state at the end.
func (e *Engine) Stop(ctx context.Context, id schema.EnvID) error {
	m, err := e.get(ctx, id)
	if err != nil {
		return err
	}
	recorded := m.State
	if rec, err := e.st.metaGetRecorded(ctx, id); err == nil {
		recorded = rec.State
	}
	envDir := e.layout.EnvPath(id)
	live, err := liveClaims(envDir)
	if err != nil {
		return classify(ErrStore, err)
	}
	spec, b, specErr := e.envSpec(ctx, m)
	running := false
	if specErr == nil {
		// Stop ends what the backend keeps between sessions too, running or not.
		if err := releaseKept(ctx, b, spec); err != nil {
			return classify(ErrRuntime, err)
		}
		st, err := b.Status(ctx, spec)
		if err != nil {
			return classify(ErrRuntime, err)
		}
		running = st.Running
	}
	if m.State != Running && recorded != Running && live == 0 && !running {
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

// refsDir holds, for the native exec fast path, which environment a name or a short id
// named the last time exec resolved it: <root>/env/.refs/<ref> holds the env_id. The
// fast path trusts an entry only while the environment's record still carries that
// name (or the short id is its own), so a stale entry only costs a fall back.
const refsDir = ".refs"

// NoteExecRef remembers the environment ref resolved to, for the exec fast path. Only a
// name or a short id is kept: what a shorter prefix means changes as environments come
// and go. It is a cache, so failures are only logged.
func (e *Engine) NoteExecRef(ctx context.Context, ref string, id schema.EnvID) {
	if ref == id.String() {
		return
	}
	if ref != id.Short() {
		m, err := e.st.metaGetRecorded(ctx, id)
		if err != nil || m.Name == nil || *m.Name != ref {
			return
		}
	}
	dir := filepath.Join(e.layout.EnvDir(), refsDir)
	path := filepath.Join(dir, ref)
	want := id.String() + "\n"
	if b, err := os.ReadFile(path); err == nil && string(b) == want {
		return
	}
	err := func() error {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		tmp, err := os.CreateTemp(dir, ".tmp-*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		if _, err := tmp.WriteString(want); err != nil {
			tmp.Close()
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		return os.Rename(tmp.Name(), path)
	}()
	if err != nil {
		e.log.Debug("exec reference not remembered", "ref", ref, "err", err)
	}
}

// pruneRefs removes the exec references of environments that are gone (gc runs it). A
// stale entry is harmless (the fast path checks the record it names) but would stay
// forever otherwise.
func (e *Engine) pruneRefs() {
	dir := filepath.Join(e.layout.EnvDir(), refsDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, ent := range ents {
		name := ent.Name()
		if strings.HasPrefix(name, ".") || !ent.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		id, err := schema.ParseEnvID(strings.TrimSpace(string(b)))
		if err == nil {
			if _, serr := os.Stat(e.layout.EnvPath(id)); serr == nil || !errors.Is(serr, fs.ErrNotExist) {
				continue
			}
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.log.Debug("prune exec reference", "ref", name, "err", err)
		}
	}
}
