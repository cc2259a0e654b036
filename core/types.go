package core

import (
	"fmt"
	"time"

	"github.com/karapace/karapace/schema"
)

// State is an environment's lifecycle state. Its JSON form is the original's PascalCase
// name ("Built"); String gives the lowercase form used in messages ("built").
type State uint8

// The lifecycle states (spec 3.2). Defined is only ever written by Init.
const (
	Defined State = iota
	Built
	Running
	Frozen
	Archived
)

var stateNames = [...]string{"Defined", "Built", "Running", "Frozen", "Archived"}

// String returns the lowercase name: "defined", "built", "running", "frozen", "archived".
func (s State) String() string {
	if int(s) < len(stateNames) {
		return lower(stateNames[s])
	}
	return fmt.Sprintf("state(%d)", uint8(s))
}

// MarshalText returns the PascalCase name used in metadata and JSON output.
func (s State) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("invalid state %d", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText accepts the PascalCase and the lowercase names.
func (s *State) UnmarshalText(b []byte) error {
	p, err := ParseState(string(b))
	if err != nil {
		return err
	}
	*s = p
	return nil
}

// ParseState parses "Built" or "built" (and the other states).
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if name == n || name == lower(n) {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("unknown environment state %q", name)
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Env is one environment's metadata as the store records it. Its JSON form (field
// names and order) is the original's EnvMetadata, which `list --json` and
// `inspect --json` print.
type Env struct {
	EnvID            schema.EnvID `json:"env_id"`
	ShortID          string       `json:"short_id"`
	Name             *string      `json:"name"`
	State            State        `json:"state"`
	ManifestHash     string       `json:"manifest_hash"`
	BaseLayer        string       `json:"base_layer"` // "" for an environment from Init
	DependencyLayers []string     `json:"dependency_layers"`
	PolicyLayer      *string      `json:"policy_layer"`
	CreatedAt        string       `json:"created_at"`
	UpdatedAt        string       `json:"updated_at"`
	RefCount         uint32       `json:"ref_count"`
	Checksum         string       `json:"checksum,omitempty"`
}

// DisplayName is the name, or "" when the environment has none.
func (e *Env) DisplayName() string {
	if e.Name == nil {
		return ""
	}
	return *e.Name
}

// BuildOptions are the options of Build and Rebuild.
type BuildOptions struct {
	// Name names the environment after a successful build (1-64 of [A-Za-z0-9_-],
	// unique in the store). A rebuild keeps the old environment's name unless Name is set.
	Name string
	// Locked builds exactly what karapace.lock says: the lock must verify and match the
	// manifest, and the resolution must give the lock's env id. The lock is not rewritten.
	Locked bool
	// Offline forbids network access; a manifest with system packages then fails.
	Offline bool
	// RequirePinnedImage refuses a base image that is not an http(s) URL.
	RequirePinnedImage bool
	// Force lets Rebuild destroy an environment whose snapshots, writable-layer
	// changes or extra exported apps it would drop (see DiscardError).
	Force bool
	// Progress receives human-readable progress lines; nil discards them.
	Progress func(msg string)
	// Transfer receives the byte counts of a base image download (total is -1 when
	// unknown), for a progress bar; nil discards them.
	Transfer func(done, total int64)
}

// BuildResult is what Init, Build and Rebuild return.
type BuildResult struct {
	EnvID   schema.EnvID
	ShortID string
	// Name is the environment's name after the operation ("" when it has none).
	Name string
	// LockPath is the lock file next to the manifest (written unless Locked).
	LockPath string
	// Lock is the resolved lock (for Init, the unresolved placeholder, which is written
	// only when no real lock exists).
	Lock *schema.Lock
	// Replaced lists the environments a Rebuild destroyed because their id changed.
	Replaced []schema.EnvID
	// NameFrom is the environment the name was moved from (zero when none): the one
	// this project built before an edit of the manifest changed the id. It stays,
	// unnamed.
	NameFrom schema.EnvID
	// Exported lists the `[gui] apps` exported as launchers and desktop entries after
	// the build; an app missing here failed to export (a warning was logged).
	Exported []string
}

// Drift is what changed in an environment's writable layer (its overlay upper
// directory) relative to what it was built from. Paths are relative, "/"-separated and
// sorted. Its JSON form is the original's DriftReport.
type Drift struct {
	EnvID    schema.EnvID `json:"env_id"`
	Added    []string     `json:"added"`
	Modified []string     `json:"modified"`
	Removed  []string     `json:"removed"`
	HasDrift bool         `json:"has_drift"`
}

// Snapshot is a committed snapshot of an environment's writable layer.
type Snapshot struct {
	// ID is the snapshot's identity: blake3("snapshot:<env>:<base layer>:<tar hash>").
	ID schema.Digest `json:"hash"`
	// Key is the snapshot layer's storage key, what Commit returns and Restore takes
	// (the original's "restore_hash").
	Key     schema.Digest `json:"restore_hash"`
	TarHash schema.Digest `json:"tar_hash"`
	Parent  string        `json:"parent"`
	// CreatedAt is when the snapshot was committed (RFC 3339, UTC).
	CreatedAt string `json:"created_at"`
	// Size is the size in bytes of the snapshot's tar.
	Size int64 `json:"size"`
	// Message is the note given with commit -m, if any.
	Message string `json:"message,omitempty"`
}

// GCReport is the result of GC. Orphans are listed sorted; in a dry run nothing is
// removed and the Removed counts are zero.
type GCReport struct {
	DryRun          bool     `json:"dry_run"`
	OrphanedEnvs    []string `json:"orphaned_envs"`
	OrphanedLayers  []string `json:"orphaned_layers"`
	OrphanedObjects []string `json:"orphaned_objects"`
	RemovedEnvs     int      `json:"removed_envs"`
	RemovedLayers   int      `json:"removed_layers"`
	RemovedObjects  int      `json:"removed_objects"`
}

// VerifyReport is the result of Verify: every object, layer and metadata record
// checked against its hash, and every reference between them checked to resolve.
type VerifyReport struct {
	Checked         int             `json:"checked"`
	Passed          int             `json:"passed"`
	Failed          []VerifyFailure `json:"failed"`
	LayersChecked   int             `json:"layers_checked"`
	LayersPassed    int             `json:"layers_passed"`
	MetadataChecked int             `json:"metadata_checked"`
	MetadataPassed  int             `json:"metadata_passed"`
	RefsChecked     int             `json:"references_checked"`
	RefsPassed      int             `json:"references_passed"`
}

// OK reports whether nothing failed.
func (r *VerifyReport) OK() bool { return len(r.Failed) == 0 }

// VerifyFailure is one item that failed verification; see store.IntegrityFailure.
type VerifyFailure struct {
	Kind string `json:"kind"` // "object", "layer", "metadata", "directory" or "reference"
	Hash string `json:"hash"` // the file name; a directory's path; the missing item

	Reason string `json:"reason"`
	// For a dangling reference: what is missing ("layer" or "object"), the key that
	// names it, the layer holding it (empty: EnvID's metadata), the environment concerned.
	Missing string `json:"missing,omitempty"`
	Field   string `json:"field,omitempty"`
	EnvID   string `json:"env_id,omitempty"`
	Layer   string `json:"layer,omitempty"`
}

// MigrateStatus says what Migrate found.
type MigrateStatus string

// Migrate outcomes. A store newer than this program is an error (ErrStore).
const (
	MigrateNoStore  MigrateStatus = "no_store" // nothing at the store root: nothing to do
	MigrateCurrent  MigrateStatus = "current"  // already the current format
	MigrateMigrated MigrateStatus = "migrated" // upgraded; see the other fields
)

// MigrateResult is the result of Migrate.
type MigrateResult struct {
	Status       MigrateStatus
	FromVersion  uint32
	ToVersion    uint32
	Environments int    // metadata records rewritten
	BackupPath   string // copy of the old version file
}

// PushOptions are the options of Push.
type PushOptions struct {
	// Tag publishes the environment in the remote registry as name@tag ("" = untagged).
	Tag string
	// Progress receives human-readable progress lines; nil discards them.
	Progress func(msg string)
}

// PullOptions are the options of Pull.
type PullOptions struct {
	// Offline forbids fetching the base image: a pulled environment whose image is not
	// in the local image cache then fails with runtime.ErrOffline.
	Offline bool
	// Progress receives human-readable progress lines; nil discards them.
	Progress func(msg string)
	// Transfer receives the byte counts of a base image download (total is -1 when
	// unknown), for a progress bar; nil discards them.
	Transfer func(done, total int64)
}

// PushResult is the result of Push.
type PushResult struct {
	EnvID          schema.EnvID
	Tag            string
	ObjectsPushed  int
	LayersPushed   int
	ObjectsSkipped int
	LayersSkipped  int
}

// PullResult is the result of Pull.
type PullResult struct {
	EnvID          schema.EnvID
	ObjectsPulled  int
	LayersPulled   int
	ObjectsSkipped int
	LayersSkipped  int
}

// LockWait describes a wait for the store lock, reported to Options.OnLockWait.
type LockWait struct {
	// Op is the operation that is waiting ("build", "destroy", ...).
	Op string
	// Holder describes who holds the lock when known ("pid 1234: build <short id>"),
	// else "".
	Holder string
	// Waited is how long the caller has waited so far.
	Waited time.Duration
}

// String renders the wait for a human: "waiting for the store lock (held by pid 1234:
// build 5e07b4d89539) to build".
func (w LockWait) String() string {
	if w.Holder != "" {
		return fmt.Sprintf("waiting for the store lock (held by %s) to %s", w.Holder, w.Op)
	}
	return fmt.Sprintf("waiting for the store lock (held by another process) to %s", w.Op)
}
