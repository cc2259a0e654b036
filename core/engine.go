package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/export"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Options configure an Engine.
type Options struct {
	// StoreRoot is the store directory (the CLI's --store). Required.
	StoreRoot string
	// Backends maps a manifest's `[runtime] backend` name to a constructor: "namespace",
	// "oci", "mock". Nothing is registered globally; a name missing here is
	// runtime.ErrBackendUnavailable.
	Backends map[string]func() runtime.Backend
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// Clock returns the current time (metadata timestamps, WAL entries); nil is time.Now.
	Clock func() time.Time
	// LockTimeout bounds the wait for the store lock; 0 waits as long as it takes.
	// Exceeding it gives an error wrapping ErrLockTimeout.
	LockTimeout time.Duration
	// OnLockWait is called once when a caller has waited LockNotice for the store lock,
	// so a frontend can say what it is waiting for. It must not block.
	OnLockWait func(LockWait)
	// LockNotice is how long to wait before calling OnLockWait; 0 is one second.
	LockNotice time.Duration
	// StopGrace is how long Stop waits after SIGTERM before SIGKILL; 0 is 500 ms.
	StopGrace time.Duration
	// ExportDirs are where `[gui] apps` launchers (bin) and desktop entries
	// (applications) go on build, and where destroy removes them from; nil derives
	// them from HOME and XDG_DATA_HOME (~/.local/bin, ~/.local/share/applications).
	// Tests set it to temporary directories.
	ExportDirs *export.Dirs
	// Executable is the karapace binary exported launchers run; "" runs `karapace`
	// from PATH.
	Executable string
	// AnyFormat opens a store of another format version, which New refuses otherwise
	// (ErrStore wrapping store.ErrVersionMismatch): only migrate and doctor, which
	// look at such a store on purpose, set it. New never recovers such a store.
	AnyFormat bool
	// RemoveTree removes an environment's tree when the caller cannot alone: files
	// that package scripts gave to system users belong to the caller's subordinate
	// ids, which only root of a user namespace with the caller's id map may unlink
	// (the CLI passes namespace.RemoveTree). nil: plain removal only.
	RemoveTree func(ctx context.Context, path string) error
}

// Engine runs the environment lifecycle on one store. It keeps no state between calls
// and is safe for concurrent use; several Engines (in one or many processes) may share
// a store.
type Engine struct {
	opts   Options
	log    *slog.Logger
	now    func() time.Time
	layout store.Layout
	st     *stores
}

// New returns an Engine on opts.StoreRoot. It creates nothing: the store is initialized
// by the first mutation. A store of another format version is refused (ErrStore
// wrapping store.ErrVersionMismatch) unless opts.AnyFormat. If the store exists and its
// lock is free, New takes the lock, rolls back the WAL entries of operations that died
// midway and clears sessions whose process is gone (see recoverOnOpen), then releases
// the lock; if the lock is held, that work is left to the holder, who does it whenever
// it takes the lock. Every caller gets this, read-only ones included.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.StoreRoot == "" {
		return nil, fmt.Errorf("%w: no store root given", ErrStore)
	}
	// WAL steps name absolute paths, so the root must be absolute.
	root, err := filepath.Abs(opts.StoreRoot)
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	opts.StoreRoot = root
	var remove func(string) error
	if opts.RemoveTree != nil {
		remove = func(p string) error { return opts.RemoveTree(context.Background(), p) }
	}
	e := &Engine{opts: opts, log: opts.Logger, now: opts.Clock, layout: store.NewLayout(root).WithRemover(remove)}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.opts.LockNotice == 0 {
		e.opts.LockNotice = time.Second
	}
	if e.opts.StopGrace == 0 {
		e.opts.StopGrace = 500 * time.Millisecond
	}
	e.st = newStores(e.layout, e.log, e.now, remove)
	formatErr := e.gateFormat()
	if formatErr != nil && !opts.AnyFormat {
		return nil, formatErr
	}
	if formatErr == nil {
		if _, err := os.Stat(e.layout.StoreDir()); err == nil {
			release, held, _, err := e.st.tryLock("recover")
			switch {
			case err == nil:
				if rerr := e.recoverOnOpen(ctx); rerr != nil {
					e.log.Warn("recovery failed", "err", rerr)
				}
				release()
			case held:
				e.log.Debug("store lock held; recovery left to its holder")
			default:
				e.log.Warn("store lock check failed; skipping recovery", "err", err)
			}
		}
	}
	return e, nil
}

// Root returns the store root.
func (e *Engine) Root() string { return e.opts.StoreRoot }

// withLock runs fn holding the store's exclusive lock. Every holder first makes the
// store private (store.Layout.Tighten; a read-only caller never changes a mode) and
// finishes the recovery of operations that died midway, so fn always starts from a
// consistent store (fix of spec 5.24: recovery runs only under the exclusive lock, and
// every mutation holds the lock for the whole span of its WAL entry).
func (e *Engine) withLock(ctx context.Context, op string, fn func() error) error {
	return e.withLockWrites(ctx, op, true, fn)
}

// withLockWrites is withLock; with writes false (a dry run) fn changes nothing, so the
// recovery stamp is left as it is: a dry run writes nothing at all.
func (e *Engine) withLockWrites(ctx context.Context, op string, writes bool, fn func() error) error {
	return e.lockAndRun(ctx, op, writes, func() (func(), bool, string, error) { return e.st.tryLock(op) }, fn)
}

// errBuilding is what withEnvLock's attempt gives while a build claims the environment:
// the wait goes on as if the lock were held, by the build.
var errBuilding = errors.New("environment is being built")

// withEnvLock is withLock for an operation on environment id that must not run while a
// build claims it (see addBuildClaim): a session, destroy, freeze, archive, commit,
// restore, pull, or another build of it. It waits for that build as for a lock holder,
// with the same notice and --lock-timeout, then runs fn holding the lock.
func (e *Engine) withEnvLock(ctx context.Context, op string, id schema.EnvID, fn func() error) error {
	return e.lockAndRun(ctx, op, true, func() (func(), bool, string, error) {
		release, held, holder, err := e.st.tryLock(op)
		if err != nil {
			return release, held, holder, err
		}
		if pid, ok := liveBuild(e.buildsDir(), id); ok {
			release()
			return nil, true, fmt.Sprintf("pid %d: build %s", pid, id.Short()), errBuilding
		}
		return release, false, "", nil
	}, fn)
}

func (e *Engine) lockAndRun(ctx context.Context, op string, writes bool, try tryLockFunc, fn func() error) error {
	release, err := e.waitLock(ctx, op, try)
	if err != nil {
		if errors.Is(err, ErrLockTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		return classify(ErrStore, err)
	}
	defer release()
	// A writer keeps the store private, including one made by an older version or
	// opened up since (the environments in it hold set-id files).
	if err := e.layout.Tighten(ctx); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return classify(ErrStore, err)
	}
	recovered := true
	if _, err := os.Stat(e.layout.StoreDir()); err == nil {
		// A rollback step that fails (a directory we may not delete) keeps its entry
		// for the next holder; it concerns a dead operation, not this one, so it is
		// reported, not allowed to block every later operation.
		if err := e.recover(ctx, !e.settled()); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			recovered = false
			e.log.Warn("recovery incomplete; retried at the next lock", "err", err)
		}
	}
	// Until fn is done the store is not settled: if this process dies midway, the
	// next opener finds no stamp and recovers in full (see recoverOnOpen).
	if !writes {
		return noSpace(fn())
	}
	e.unsettle()
	if recovered {
		defer e.markSettled()
	}
	return noSpace(fn())
}

// recover rolls back the WAL, finishes or undoes interrupted restores, and settles
// environments whose sessions all died; deep also settles what the original's sessions
// left (see settleSessions). The caller holds the exclusive lock.
func (e *Engine) recover(ctx context.Context, deep bool) error {
	n, err := e.st.walRecover(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		e.log.Info("rolled back interrupted operations", "count", n)
	}
	// A build in progress has a directory without metadata until it commits; a build
	// whose process is gone left both to us.
	building := map[schema.EnvID]bool{}
	for _, c := range readBuilds(e.buildsDir()) {
		if c.live {
			building[c.id] = true
		} else if err := os.Remove(c.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	ents, err := os.ReadDir(e.layout.EnvDir())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, ent := range ents {
		if name, ok := strings.CutSuffix(ent.Name(), swapSuffix); ok {
			// A pull's replaced directory: the WAL is rolled back, so its swap was
			// committed and only the deletion of the aside copy was cut short.
			if _, err := schema.ParseEnvID(name); err == nil {
				if err := e.layout.RemoveTree(filepath.Join(e.layout.EnvDir(), ent.Name())); err != nil {
					return err
				}
			}
			continue
		}
		id, err := schema.ParseEnvID(ent.Name())
		if err != nil || !ent.IsDir() {
			continue
		}
		envDir := e.layout.EnvPath(id)
		// A restore's aside copy outlives its committed operation only by a crash.
		if err := e.layout.RemoveTree(e.layout.UpperDir(id) + swapSuffix); err != nil {
			return err
		}
		if building[id] {
			continue
		}
		if _, err := os.Lstat(e.st.metaPath(id)); errors.Is(err, fs.ErrNotExist) {
			// No operation is in flight (we hold the lock and the WAL is rolled
			// back), so a directory without metadata is what a destroy cut short
			// left behind.
			e.log.Info("removing environment directory without metadata", "env", id.Short())
			if err := e.layout.RemoveTree(envDir); err != nil {
				return err
			}
			continue
		}
		// Only an environment with session claims can be stuck Running by a session of
		// ours (a session records its claim before it sets Running), so without deep
		// the others cost one stat.
		if err := e.settleSessions(ctx, id, envDir, deep); err != nil {
			return err
		}
	}
	return nil
}

// swapSuffix is what store.WAL.SwapDir appends to the directory it moves aside.
const swapSuffix = ".swap-old"

// backend returns the backend a manifest names.
func (e *Engine) backend(name string) (runtime.Backend, error) {
	mk, ok := e.opts.Backends[name]
	if !ok || mk == nil {
		return nil, classify(ErrRuntime, withMsg(runtime.ErrBackendUnavailable, "backend '%s' is not available on this system", name))
	}
	return mk(), nil
}

// Manifest returns the normalized manifest an environment was built from (the object
// its metadata names), integrity-checked.
func (e *Engine) Manifest(ctx context.Context, id schema.EnvID) (*schema.Normalized, error) {
	m, err := e.get(ctx, id)
	if err != nil {
		return nil, err
	}
	n, err := e.st.manifest(ctx, m.ManifestHash)
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	return n, nil
}

// envSpec loads an environment's stored manifest and its backend.
func (e *Engine) envSpec(ctx context.Context, m *Env) (*runtime.Spec, runtime.Backend, error) {
	n, err := e.st.manifest(ctx, m.ManifestHash)
	if err != nil {
		return nil, nil, classify(ErrStore, err)
	}
	b, err := e.backend(n.RuntimeBackend)
	if err != nil {
		return nil, nil, err
	}
	envDir := e.layout.EnvPath(m.EnvID)
	return &runtime.Spec{
		EnvID:       m.EnvID,
		Name:        m.DisplayName(),
		StoreRoot:   e.layout.Root(),
		EnvDir:      envDir,
		Manifest:    *n,
		ManifestDir: readManifestDir(envDir),
		ReadOnly:    m.State == Frozen,
	}, b, nil
}

// get reads an environment's metadata: ErrNotFound when missing, ErrStore when corrupt.
func (e *Engine) get(ctx context.Context, id schema.EnvID) (*Env, error) {
	m, err := e.st.metaGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound(id.String())
	}
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	return m, nil
}

// Inspect returns an environment's metadata, checksum verified. A record that fails its
// checksum is ErrStore (corruption), not ErrNotFound.
func (e *Engine) Inspect(ctx context.Context, id schema.EnvID) (*Env, error) {
	return e.get(ctx, id)
}

// List returns every environment, sorted by id. Unreadable records are logged and left
// out (Verify reports them).
func (e *Engine) List(ctx context.Context) ([]Env, error) {
	var envs []Env
	err := e.Each(ctx, func(env *Env) error {
		envs = append(envs, *env)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return envs, nil
}

// Each calls fn with every environment List would return, in the same order, without
// holding them all: a store of any size costs a batch of records in memory. env is
// fn's to keep. An error from fn stops the walk and is returned as it is.
func (e *Engine) Each(ctx context.Context, fn func(env *Env) error) error {
	var fnErr error
	err := e.st.metaEach(ctx, func(env *Env) error {
		// What a listing needs beyond the record (the live-session look at its
		// directory) is done in metaEach, on the store's reading goroutines, in parallel.
		if err := fn(env); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if fnErr != nil {
		return fnErr
	}
	return classify(ErrStore, err)
}

// Resolve turns a reference into an environment id. A reference is a full id, a short
// id, a unique id prefix (lowercase hex) or a name. An ambiguous prefix is an
// *AmbiguousError; no match is ErrNotFound; anything that is neither hex nor a valid
// name is ErrInvalidRef and never reaches the file system. A full id resolves to its
// metadata entry even when the record is corrupt, which a listing leaves out: reading
// it is then ErrStore, not "no environment matching", and Destroy can remove it.
func (e *Engine) Resolve(ctx context.Context, ref string) (schema.EnvID, error) {
	if !schema.IsHexPrefix(ref) && !validName(ref) {
		return resolveRef(ref, nil)
	}
	if id, err := schema.ParseEnvID(ref); err == nil && id.String() == ref {
		if _, err := os.Lstat(e.st.metaPath(id)); err == nil {
			return id, nil
		}
	}
	envs, err := e.List(ctx)
	if err != nil {
		return schema.EnvID{}, err
	}
	return resolveRef(ref, envs)
}

// Freeze marks a Built or Running environment Frozen: it can no longer be entered, and
// sessions that are live keep running; the freeze outlasts them.
func (e *Engine) Freeze(ctx context.Context, id schema.EnvID) error {
	return e.transition(ctx, "freeze", id, Frozen)
}

// Archive marks a Built or Frozen environment Archived. GC keeps archived environments.
func (e *Engine) Archive(ctx context.Context, id schema.EnvID) error {
	return e.transition(ctx, "archive", id, Archived)
}

// Unfreeze makes a Frozen environment Built again: it can be entered, and its writable
// layer takes changes. Only a frozen environment can be unfrozen.
func (e *Engine) Unfreeze(ctx context.Context, id schema.EnvID) error {
	return e.transition(ctx, "unfreeze", id, Built, Frozen)
}

// transition moves id to the state to; from, when given, lists the states it may leave.
func (e *Engine) transition(ctx context.Context, op string, id schema.EnvID, to State, from ...State) error {
	return e.withEnvLock(ctx, op, id, func() error {
		m, err := e.get(ctx, id)
		if err != nil {
			return err
		}
		if len(from) > 0 && !slices.Contains(from, m.State) {
			return &TransitionError{From: m.State.String(), To: op + " requires a " + from[0].String() + " environment"}
		}
		if err := checkTransition(m.State, to); err != nil {
			return err
		}
		if err := e.st.setState(ctx, m, to); err != nil {
			return classify(ErrStore, err)
		}
		// A kept root was made for the old state (a frozen root is read-only).
		e.release(ctx, m)
		return nil
	})
}

// release ends what the environment's backend keeps of it between sessions (see
// runtime.Releaser). It is best effort: a keeper of a stale plan is never joined, so a
// failure is only logged.
func (e *Engine) release(ctx context.Context, m *Env) {
	spec, b, err := e.envSpec(ctx, m)
	if err != nil {
		return
	}
	if err := releaseKept(ctx, b, spec); err != nil {
		e.log.Warn("release the environment's kept root", "env", m.EnvID.Short(), "err", err)
	}
}

// releaseKept ends what backend b keeps of an environment between sessions, if it
// keeps anything (runtime.Releaser).
func releaseKept(ctx context.Context, b runtime.Backend, spec *runtime.Spec) error {
	if r, ok := b.(runtime.Releaser); ok {
		return r.Release(ctx, spec)
	}
	return nil
}

// Rename names an environment. Names are 1-64 of [A-Za-z0-9_-] and unique in the store.
func (e *Engine) Rename(ctx context.Context, id schema.EnvID, name string) error {
	return e.withLock(ctx, "rename", func() error {
		if _, err := e.get(ctx, id); err != nil {
			return err
		}
		return classify(ErrStore, e.st.setName(ctx, id, name))
	})
}

// Destroy removes an environment: its backend state, directory and metadata. An
// environment with a live session is refused. A missing or corrupt manifest object, or
// a backend this program lacks, does not block it: only the backend's own cleanup is
// skipped (with a warning).
func (e *Engine) Destroy(ctx context.Context, id schema.EnvID) error {
	return e.withEnvLock(ctx, "destroy", id, func() error { return e.destroyLocked(ctx, id) })
}

func (e *Engine) destroyLocked(ctx context.Context, id schema.EnvID) error {
	m, err := e.get(ctx, id)
	if err != nil {
		// A record that is there but unreadable or corrupt can still go (by its full
		// id, see Resolve); only the backend's cleanup, which needs it, is skipped.
		if !corruptRecord(err) {
			return err
		}
		e.log.Warn("destroying an environment whose record is unreadable", "env", id.Short(), "err", err)
		m = nil
	}
	envDir := e.layout.EnvPath(id)
	if live, err := liveClaims(envDir); err != nil {
		return classify(ErrStore, err)
	} else if live > 0 {
		return &TransitionError{From: "Running", To: "cannot destroy a running environment; stop it first"}
	}
	// The WAL steps finish the destroy if we die midway: the metadata and the
	// directory go, whatever happened before. The entry is the store's reserved one,
	// so it can be written on a full disk. Without it (no reserve and no space) the
	// destroy still runs, and the metadata goes first: a directory without metadata is
	// what recovery removes anyway.
	op, err := e.st.walBegin(ctx, "Destroy", id.String(), removeFile(e.st.metaPath(id)), removeDir(envDir))
	if errors.Is(err, syscall.ENOSPC) {
		e.log.Warn("no space for a WAL entry; destroying without one", "env", id.Short(), "err", err)
	} else if err != nil {
		return classify(ErrStore, err)
	}
	if m == nil {
		e.log.Warn("destroying without backend cleanup", "env", id.Short())
	} else if spec, b, err := e.envSpec(ctx, m); err != nil {
		e.log.Warn("destroying without backend cleanup", "env", id.Short(), "err", err)
	} else if err := b.Destroy(ctx, spec); err != nil {
		return e.abort(op, classify(ErrRuntime, err))
	}
	if err := e.st.metaRemove(ctx, id); err != nil {
		return classify(ErrStore, err) // WAL left: recovery finishes
	}
	if err := e.layout.RemoveTree(envDir); err != nil {
		return classify(ErrStore, fmt.Errorf("remove %s: %w", envDir, err))
	}
	if op != "" {
		if err := e.st.walCommit(ctx, op); err != nil {
			return classify(ErrStore, err)
		}
	}
	e.unexportApps(ctx, id)
	return nil
}

// abort drops a WAL entry without rolling it back (the operation failed before doing
// anything its steps would undo) and returns err.
func (e *Engine) abort(op string, err error) error {
	if op == "" {
		return err
	}
	if cerr := e.st.walCommit(context.Background(), op); cerr != nil {
		e.log.Warn("drop WAL entry", "op", op, "err", cerr)
	}
	return err
}

// rollback undoes an operation now, through its WAL entry, and returns err.
func (e *Engine) rollback(op string, err error) error {
	if rerr := e.st.walRollback(context.Background(), op); rerr != nil {
		e.log.Warn("rollback failed; recovery will retry", "op", op, "err", rerr)
	}
	return err
}

// GC removes environments nobody references and the layers and objects nothing live
// uses. Cancelling ctx stops it between items; the report then counts what was removed.
func (e *Engine) GC(ctx context.Context, dryRun bool) (*GCReport, error) {
	rep := &GCReport{DryRun: dryRun, OrphanedEnvs: []string{}, OrphanedLayers: []string{}, OrphanedObjects: []string{}}
	if _, err := os.Stat(e.layout.StoreDir()); errors.Is(err, fs.ErrNotExist) {
		return rep, nil
	}
	err := e.withLockWrites(ctx, "gc", !dryRun, func() error {
		// The entry marks a GC in progress and has no step: a dry run, which writes
		// nothing, logs none, and a GC on a full disk without the reserved entry
		// runs without it.
		op := ""
		if !dryRun {
			var err error
			op, err = e.st.walBegin(ctx, "Gc", "gc")
			if errors.Is(err, syscall.ENOSPC) {
				e.log.Warn("no space for a WAL entry; collecting without one", "err", err)
			} else if err != nil {
				return classify(ErrStore, err)
			}
		}
		r, gerr := e.st.gc(ctx, dryRun)
		if r != nil {
			rep = r
		}
		if gerr == nil && !dryRun {
			e.pruneRefs()
		}
		if op != "" {
			if cerr := e.st.walCommit(context.Background(), op); cerr != nil && gerr == nil {
				gerr = cerr
			}
		}
		if gerr != nil && !errors.Is(gerr, context.Canceled) && !errors.Is(gerr, context.DeadlineExceeded) {
			return classify(ErrStore, gerr)
		}
		return gerr
	})
	return rep, err
}

// Verify checks every object, layer and metadata record against its hash or checksum,
// and every reference between them (manifest objects, base, dependency and policy
// layers, parents, object_refs) and the store directories for presence, and reports
// every bad or missing one (corrupt metadata included). It takes no lock, so it never
// waits for a build: every store write is an atomic rename (no torn file is ever
// seen), and an item that fails only because it was removed while Verify ran (by GC or
// a destroy) is not reported.
func (e *Engine) Verify(ctx context.Context) (*VerifyReport, error) {
	if _, err := os.Stat(e.layout.StoreDir()); errors.Is(err, fs.ErrNotExist) {
		return &VerifyReport{Failed: []VerifyFailure{}}, nil
	}
	rep, err := e.st.verify(ctx)
	if err != nil {
		return nil, classify(ErrStore, err)
	}
	return rep, nil
}

// Migrate upgrades an older store to the current format. A missing store is
// MigrateNoStore; a newer store is an error (ErrStore).
func (e *Engine) Migrate(ctx context.Context) (*MigrateResult, error) {
	if _, err := os.Stat(e.layout.VersionFile()); errors.Is(err, fs.ErrNotExist) {
		if _, err := os.Stat(e.layout.MetadataDir()); errors.Is(err, fs.ErrNotExist) {
			return &MigrateResult{Status: MigrateNoStore}, nil
		}
	}
	var res *MigrateResult
	err := e.withLock(ctx, "migrate", func() error {
		r, err := e.st.migrate(ctx)
		if err != nil {
			return classify(ErrStore, err)
		}
		res = r
		return nil
	})
	return res, err
}
