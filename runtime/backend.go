package runtime

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/karapace/karapace/schema"
)

// Error classes of the runtime. Backends wrap one of these with context; frontends map
// them (exit codes, D-Bus error names) with errors.Is.
var (
	ErrBackendUnavailable = errors.New("backend is not available on this system")
	ErrNotRunning         = errors.New("environment is not running")
	ErrAlreadyRunning     = errors.New("environment is already running")
	ErrPolicy             = errors.New("security policy violation")
	ErrMountDenied        = errors.New("mount not allowed by policy")
	ErrMountMissing       = errors.New("mount source missing")
	ErrDeviceDenied       = errors.New("device access not allowed")
	ErrExecFailed         = errors.New("runtime execution failed")
	ErrImageNotFound      = errors.New("image not found")
	ErrOffline            = errors.New("offline mode")
	ErrNotBuilt           = errors.New("environment has not been built yet")
)

// Spec describes one environment to a backend. The engine fills it from the store.
type Spec struct {
	EnvID     schema.EnvID
	Name      string // the environment's name, or ""
	StoreRoot string // the store root (<store>)
	EnvDir    string // <store>/env/<env_id>: upper/, work/ and backend state live here
	Manifest  schema.Normalized
	// ManifestDir is the directory of the manifest file, against which relative mount
	// host paths resolve. Empty when unknown (then relative mounts resolve against the
	// current directory).
	ManifestDir string
	// Packages are the exact versions Build installs (from the resolution or the lock).
	Packages []schema.ResolvedPackage
	// Offline forbids any network access while resolving or building.
	Offline bool
	// ReadOnly mounts the environment's root read-only (a frozen environment).
	ReadOnly bool
	// Progress receives human-readable progress lines; nil discards them.
	Progress func(msg string)
	// Transfer receives the byte counts of a base image download (total is -1 when
	// unknown), for a progress bar; nil discards them.
	Transfer func(done, total int64)
	// Env are variables the caller sets for this session (`exec -e K=V`); the deny
	// list still applies. A backend must not reuse a plan made with them.
	Env map[string]string
	// SSHAgent binds the caller's SSH agent socket ($SSH_AUTH_SOCK) into the session
	// and sets SSH_AUTH_SOCK there: an explicit opt-in past the deny list.
	SSHAgent bool
	// FastExec, set by the engine on exec sessions only, lets a backend that supports
	// it leave a plan for the binary's native fast path (docs/engine.md, "Fast exec").
	FastExec *FastExec
}

// FastExecFile is the name, under Spec.EnvDir, of the plan the native exec fast path
// reads. It is a cache: deleting it only makes the next exec take the full path.
const FastExecFile = "fastexec"

// FastExec is what the engine vouches for when an exec session starts, so that a later
// exec may skip the engine: the plan is valid only while the metadata record at
// MetaPath holds exactly Meta, and the fast path does what the engine would (the shared
// store lock, no pending WAL entry, a session claim in ClaimsDir).
type FastExec struct {
	MetaPath  string
	Meta      []byte
	Name      string // the environment's name, or ""
	LockFile  string // the store lock (flock)
	WALDir    string // must hold no entry
	ClaimsDir string // where a session's claim goes: "<pid>.<n>" holding "<pid> <start time>"
}

// Stdio is the set of streams a session runs with. When a stream is an *os.File it is
// handed to the environment as the file descriptor itself, so terminals, job control and
// ^C keep working.
type Stdio struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// Status is what a backend knows about an environment's live sessions.
type Status struct {
	EnvID   schema.EnvID
	Running bool
	// PIDs of the live sessions, as seen from the host.
	PIDs []int
}

// Resolver pins a manifest to exact versions.
type Resolver interface {
	// Resolve makes the base image available and returns its digest and the exact version
	// of every system package. A package that does not exist is an error naming it.
	Resolve(ctx context.Context, spec *Spec) (schema.Resolution, error)
}

// Builder prepares an environment on disk.
type Builder interface {
	// Build creates spec.EnvDir's backend state and installs spec.Packages. It is called
	// with the canonical env id; everything it writes lands under spec.EnvDir.
	Build(ctx context.Context, spec *Spec) error
	// Destroy removes the backend's state for the environment (mounts, containers).
	// Deleting spec.EnvDir is the engine's job.
	Destroy(ctx context.Context, spec *Spec) error
}

// Releaser is implemented by backends that may keep an environment's root mounted
// between sessions (the namespace backend's keeper). Release ends that, so the
// environment's directories can be replaced or deleted; sessions still running are not
// affected.
type Releaser interface {
	Release(ctx context.Context, spec *Spec) error
}

// Runner runs sessions in a built environment.
type Runner interface {
	// Enter runs an interactive session: argv, or a login shell in the home directory when
	// argv is empty. It returns the session's exit status.
	Enter(ctx context.Context, spec *Spec, stdio Stdio, argv []string) (int, error)
	// Exec runs argv with streamed stdio and returns its exit status (128+n when killed by
	// signal n). Cancelling ctx forwards SIGTERM, then SIGKILL.
	Exec(ctx context.Context, spec *Spec, stdio Stdio, argv []string) (int, error)
	// Status reports the environment's live sessions.
	Status(ctx context.Context, spec *Spec) (Status, error)
	// Stop sends SIGTERM to every live session, then SIGKILL after grace.
	Stop(ctx context.Context, spec *Spec, grace time.Duration) error
}

// Backend is a complete runtime backend: namespace, oci or mock.
type Backend interface {
	// Name is the manifest's `[runtime] backend` value that selects this backend.
	Name() string
	// Available returns nil when the backend can run on this host, or an error saying
	// what is missing and how to install it.
	Available(ctx context.Context) error
	Resolver
	Builder
	Runner
}
