package core

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
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
	// SkipRecovery skips WAL recovery and stale-session cleanup in New (read-only
	// frontends such as `list` and `tui` may set it; recovery then happens at the next
	// mutation).
	SkipRecovery bool
}

// Engine runs the environment lifecycle on one store. It keeps no state between calls
// and is safe for concurrent use; several Engines (in one or many processes) may share
// a store.
type Engine struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
}

// New returns an Engine on opts.StoreRoot. It creates nothing: the store is initialized
// by the first mutation. If the store exists and its lock is free, New takes the lock,
// rolls back the WAL entries of operations that died midway and clears sessions whose
// process is gone, then releases the lock; if the lock is held, that work is left to
// the holder or the next mutation.
func New(ctx context.Context, opts Options) (*Engine, error) {
	if opts.StoreRoot == "" {
		return nil, fmt.Errorf("%w: no store root given", ErrStore)
	}
	e := &Engine{opts: opts, log: opts.Logger, now: opts.Clock}
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
	return e, nil
}

// Root returns the store root.
func (e *Engine) Root() string { return e.opts.StoreRoot }

var errTODO = fmt.Errorf("%w yet", ErrNotImplemented)

// Init records a manifest without building it: the environment appears as Defined under
// the manifest's preliminary id. An existing karapace.lock next to the manifest is left
// alone; when there is none, a lock with unresolved versions is written.
func (e *Engine) Init(ctx context.Context, manifestPath string) (*BuildResult, error) {
	return nil, errTODO
}

// Build resolves the manifest with its backend, builds the environment, captures its
// base layer and records it as Built; unless opts.Locked it writes karapace.lock next to
// the manifest. Building over an existing environment with the same id keeps its name,
// creation time and writable layer; a failed build leaves an existing environment as it
// was and removes only what the build created.
func (e *Engine) Build(ctx context.Context, manifestPath string, opts BuildOptions) (*BuildResult, error) {
	return nil, errTODO
}

// Rebuild builds the manifest, then destroys the environment it replaces (the one the
// lock file, or else the manifest's preliminary id, points at) when the id changed. The
// new environment inherits the old one's name unless opts.Name is set. The old metadata
// is removed only when its destroy succeeded.
func (e *Engine) Rebuild(ctx context.Context, manifestPath string, opts BuildOptions) (*BuildResult, error) {
	return nil, errTODO
}

// Enter runs an interactive session (argv, or the login shell when empty) and returns
// its exit status. The environment must be Built or Running; it is Running while any
// session is live. The store lock is held only to record the session and to end it,
// never while the session runs.
func (e *Engine) Enter(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string) (int, error) {
	return 0, errTODO
}

// Exec runs argv in the environment with streamed stdio and returns its exit status
// (128+n when killed by signal n). A non-zero status is not an error. State handling is
// Enter's.
func (e *Engine) Exec(ctx context.Context, id schema.EnvID, stdio runtime.Stdio, argv []string) (int, error) {
	return 0, errTODO
}

// Stop ends every live session of a Running environment: SIGTERM, then SIGKILL after
// Options.StopGrace. A frozen environment with live sessions can be stopped too. An
// environment with no live session gives an error wrapping runtime.ErrNotRunning.
func (e *Engine) Stop(ctx context.Context, id schema.EnvID) error {
	return errTODO
}

// Destroy removes an environment: its backend state, directory and metadata. A Running
// environment is refused.
func (e *Engine) Destroy(ctx context.Context, id schema.EnvID) error {
	return errTODO
}

// Freeze marks a Built or Running environment Frozen: it can no longer be entered, and
// sessions that are live keep running; the freeze outlasts them.
func (e *Engine) Freeze(ctx context.Context, id schema.EnvID) error {
	return errTODO
}

// Archive marks a Built or Frozen environment Archived. GC keeps archived environments.
func (e *Engine) Archive(ctx context.Context, id schema.EnvID) error {
	return errTODO
}

// Rename names an environment. Names are 1-64 of [A-Za-z0-9_-] and unique in the store.
func (e *Engine) Rename(ctx context.Context, id schema.EnvID, name string) error {
	return errTODO
}

// Inspect returns an environment's metadata, checksum verified. A record that fails its
// checksum is ErrStore (corruption), not ErrNotFound.
func (e *Engine) Inspect(ctx context.Context, id schema.EnvID) (*Env, error) {
	return nil, errTODO
}

// List returns every environment, sorted by id. Unreadable records are logged and left
// out (Verify reports them).
func (e *Engine) List(ctx context.Context) ([]Env, error) {
	return nil, errTODO
}

// Resolve turns a reference into an environment id. A reference is a full id, a short
// id, a unique id prefix (lowercase hex) or a name. An ambiguous prefix is an
// *AmbiguousError; no match is ErrNotFound; anything that is neither hex nor a valid
// name is ErrInvalidRef and never reaches the file system.
func (e *Engine) Resolve(ctx context.Context, ref string) (schema.EnvID, error) {
	return schema.EnvID{}, errTODO
}

// Diff reports the drift in an environment's writable layer: files added, modified and
// removed (overlay whiteouts included). It never follows symlinks.
func (e *Engine) Diff(ctx context.Context, id schema.EnvID) (*Drift, error) {
	return nil, errTODO
}

// Commit snapshots the writable layer of a Built or Frozen environment and returns the
// snapshot's key (what Restore takes). Committing unchanged content gives the same key.
func (e *Engine) Commit(ctx context.Context, id schema.EnvID) (schema.Digest, error) {
	return schema.Digest{}, errTODO
}

// Restore replaces the writable layer of a Built or Frozen environment with a snapshot
// of that same environment. The swap is crash-safe: at every point either the old or
// the new layer is complete on disk.
func (e *Engine) Restore(ctx context.Context, id schema.EnvID, snapshot schema.Digest) error {
	return errTODO
}

// Snapshots lists an environment's snapshots, sorted by snapshot id.
func (e *Engine) Snapshots(ctx context.Context, id schema.EnvID) ([]Snapshot, error) {
	return nil, errTODO
}

// GC removes environments nobody references and the layers and objects nothing live
// uses. Cancelling ctx stops it between items; the report then counts what was removed.
func (e *Engine) GC(ctx context.Context, dryRun bool) (*GCReport, error) {
	return nil, errTODO
}

// Verify checks every object, layer and metadata record against its hash or checksum.
func (e *Engine) Verify(ctx context.Context) (*VerifyReport, error) {
	return nil, errTODO
}

// Migrate upgrades an older store to the current format. A missing store is
// MigrateNoStore; a newer store is an error (ErrStore).
func (e *Engine) Migrate(ctx context.Context) (*MigrateResult, error) {
	return nil, errTODO
}

// Push uploads an environment (metadata, layers, objects) to a remote store and, with a
// tag, publishes it in the remote registry.
func (e *Engine) Push(ctx context.Context, id schema.EnvID, rb remote.Backend, opts PushOptions) (*PushResult, error) {
	return nil, classify(ErrRemote, errTODO)
}

// Pull downloads an environment from a remote store. ref is a registry reference
// (name@tag) or an env id.
func (e *Engine) Pull(ctx context.Context, ref string, rb remote.Backend) (*PullResult, error) {
	return nil, classify(ErrRemote, errTODO)
}

