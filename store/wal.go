package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/karapace/karapace/schema"
)

// OpKind is the kind of a logged operation; its JSON is the PascalCase name.
type OpKind string

// Operation kinds.
const (
	OpBuild   OpKind = "Build"
	OpRebuild OpKind = "Rebuild"
	OpCommit  OpKind = "Commit"
	OpRestore OpKind = "Restore"
	OpDestroy OpKind = "Destroy"
	OpGC      OpKind = "Gc"
	OpEnter   OpKind = "Enter"
	OpExec    OpKind = "Exec"
)

// String is the lowercase display form ("build", "gc").
func (k OpKind) String() string { return strings.ToLower(string(k)) }

// StepKind names a rollback step.
type StepKind string

// Rollback step kinds. RemoveDir, RemoveFile and ResetState are the original's; Rename
// is ours (an original reading our WAL fails to parse such an entry, logs it and
// deletes it, as it does for any corrupt entry).
const (
	StepRemoveDir  StepKind = "RemoveDir"
	StepRemoveFile StepKind = "RemoveFile"
	StepResetState StepKind = "ResetState"
	StepRename     StepKind = "Rename"
)

// Step is one rollback action, applied when an operation did not commit.
//   - RemoveDir Path: delete the directory tree if it exists.
//   - RemoveFile Path: delete the file if it exists.
//   - ResetState EnvID TargetState: set that environment's state.
//   - Rename From To: if From exists, delete To and rename From back to To.
//
// Paths must lie inside the store root; recovery refuses others.
type Step struct {
	Kind        StepKind
	Path        string
	EnvID       string
	TargetState string
	From, To    string
}

// RemoveDirStep returns a RemoveDir step.
func RemoveDirStep(path string) Step { return Step{Kind: StepRemoveDir, Path: path} }

// RemoveFileStep returns a RemoveFile step.
func RemoveFileStep(path string) Step { return Step{Kind: StepRemoveFile, Path: path} }

// ResetStateStep returns a ResetState step.
func ResetStateStep(id schema.EnvID, st State) Step {
	return Step{Kind: StepResetState, EnvID: id.String(), TargetState: string(st)}
}

// RenameStep returns a Rename step: rollback moves from back to to.
func RenameStep(from, to string) Step { return Step{Kind: StepRename, From: from, To: to} }

type resetStateJSON struct {
	EnvID       string `json:"env_id"`
	TargetState string `json:"target_state"`
}

type renameJSON struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// MarshalJSON writes serde's externally tagged form: {"RemoveDir": "/p"}.
func (s Step) MarshalJSON() ([]byte, error) {
	var v any
	switch s.Kind {
	case StepRemoveDir, StepRemoveFile:
		v = s.Path
	case StepResetState:
		v = resetStateJSON{s.EnvID, s.TargetState}
	case StepRename:
		v = renameJSON{s.From, s.To}
	default:
		return nil, fmt.Errorf("%w: unknown rollback step %q", ErrCorrupt, s.Kind)
	}
	return schema.MarshalCompact(map[string]any{string(s.Kind): v})
}

// UnmarshalJSON reads the externally tagged form.
func (s *Step) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	if len(m) != 1 {
		return fmt.Errorf("rollback step must have exactly one key, has %d", len(m))
	}
	for k, raw := range m {
		*s = Step{Kind: StepKind(k)}
		switch s.Kind {
		case StepRemoveDir, StepRemoveFile:
			return json.Unmarshal(raw, &s.Path)
		case StepResetState:
			var r resetStateJSON
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			s.EnvID, s.TargetState = r.EnvID, r.TargetState
			return nil
		case StepRename:
			var r renameJSON
			if err := json.Unmarshal(raw, &r); err != nil {
				return err
			}
			s.From, s.To = r.From, r.To
			return nil
		}
		return fmt.Errorf("unknown rollback step %q", k)
	}
	return nil
}

// Op is a WAL entry, <root>/store/wal/<op id>.json.
type Op struct {
	OpID          string `json:"op_id"`
	Kind          OpKind `json:"kind"`
	EnvID         string `json:"env_id"` // the literal "gc" for GC
	Timestamp     string `json:"timestamp"`
	RollbackSteps []Step `json:"rollback_steps"`
}

// DecodeOp parses a WAL entry; every field is required.
func DecodeOp(b []byte) (Op, error) {
	var op Op
	if err := requireKeys(b, "op_id", "kind", "env_id", "timestamp", "rollback_steps"); err != nil {
		return op, err
	}
	if err := json.Unmarshal(b, &op); err != nil {
		return op, fmt.Errorf("%w: wal entry: %v", ErrCorrupt, err)
	}
	switch op.Kind {
	case OpBuild, OpRebuild, OpCommit, OpRestore, OpDestroy, OpGC, OpEnter, OpExec:
	default:
		return op, fmt.Errorf("%w: wal entry kind %q", ErrCorrupt, op.Kind)
	}
	if !validOpID(op.OpID) {
		return op, fmt.Errorf("%w: wal op id %q", ErrCorrupt, op.OpID)
	}
	return op, nil
}

// validOpID keeps op ids usable as file names.
func validOpID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || c == '-') {
			return false
		}
	}
	return true
}

// WAL is the write-ahead log of multi-step operations. Begin an operation, add the
// rollback step for each change before making it, Commit when done. Recover, run under
// the exclusive store lock before anything else, rolls back what did not commit.
type WAL struct {
	layout Layout
	dir    string
	root   string
	envs   *Envs
	now    func() time.Time
	log    *slog.Logger
	mu     sync.Mutex // serializes read-modify-write of entries within this process
}

// NewWAL returns the WAL of a layout. now and log may be nil.
func NewWAL(l Layout, now func() time.Time, log *slog.Logger) *WAL {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &WAL{layout: l, dir: l.WALDir(), root: l.Root(), envs: NewEnvs(l, now, log), now: now, log: log}
}

func (w *WAL) path(opID string) string { return filepath.Join(w.dir, opID+".json") }

// Begin writes a fresh entry holding steps and returns its op id: the original's
// YYYYMMDDHHMMSSmmm-<first 8 hex of blake3(env id)> plus "-<8 random hex>", so two
// operations on one environment within a millisecond never share an entry. The entry
// appears whole or not at all; on an error the op id is "" and nothing is left.
//
// Destroy and GC entries are written into the reserved entry (walreserve.go), so they
// can begin on a full disk; every other Begin makes sure the reserve exists for them.
func (w *WAL) Begin(ctx context.Context, kind OpKind, envID string, steps ...Step) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	for _, s := range steps {
		if err := w.checkStep(s); err != nil {
			return "", wrap("wal begin", err)
		}
	}
	if err := w.layout.mkdir(w.dir); err != nil {
		return "", wrap("wal begin", err)
	}
	now := w.now().UTC()
	prefix := now.Format("20060102150405") + fmt.Sprintf("%03d", now.Nanosecond()/1e6) + "-" + schema.SumString(envID).String()[:8]
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		var r [4]byte
		_, _ = rand.Read(r[:])
		id := prefix + "-" + hex.EncodeToString(r[:])
		if _, err := os.Lstat(w.path(id)); err == nil {
			continue
		}
		op := Op{OpID: id, Kind: kind, EnvID: envID, Timestamp: FormatTime(now), RollbackSteps: append([]Step{}, steps...)}
		if freesSpace(kind) {
			err := w.beginReserved(op)
			if err == nil {
				return id, nil
			}
			w.log.Debug("wal: reserved entry unavailable", "op", id, "err", err)
		}
		if err := w.write(op); err != nil {
			return "", wrap("wal begin", err)
		}
		if !freesSpace(kind) {
			if err := w.ensureReserve(); err != nil {
				w.log.Debug("wal: cannot make the reserved entry", "err", err)
			}
		}
		return id, nil
	}
}

func (w *WAL) write(op Op) error {
	b, err := schema.MarshalPretty(op)
	if err != nil {
		return err
	}
	return writeFileAtomic(w.path(op.OpID), b)
}

// AddStep appends a rollback step to an open operation (rewriting its entry atomically).
func (w *WAL) AddStep(ctx context.Context, opID string, s Step) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !validOpID(opID) {
		return wrap("wal add step", fmt.Errorf("%w: op id %q", ErrInvalidID, opID))
	}
	if err := w.checkStep(s); err != nil {
		return wrap("wal add step", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	b, err := os.ReadFile(w.path(opID))
	if errors.Is(err, fs.ErrNotExist) {
		return wrap("wal add step", &NotFoundError{What: "operation", Key: opID})
	}
	if err != nil {
		return wrap("wal add step", err)
	}
	op, err := DecodeOp(b)
	if err != nil {
		return wrap("wal add step", err)
	}
	op.RollbackSteps = append(op.RollbackSteps, s)
	return wrap("wal add step", w.write(op))
}

// Commit ends an operation by deleting its entry (a reserved one goes back to being
// the reserve); a missing entry is not an error.
func (w *WAL) Commit(ctx context.Context, opID string) error {
	if !validOpID(opID) {
		return wrap("wal commit", fmt.Errorf("%w: op id %q", ErrInvalidID, opID))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.retire(opID); err != nil {
		return wrap("wal commit", err)
	}
	return wrap("wal commit", syncDir(w.dir))
}

// CorruptEntry is a WAL file that could not be read or parsed; ListIncomplete and
// Recover delete such files and report them.
type CorruptEntry struct {
	Name string
	Err  error
}

// ListIncomplete returns the entries of operations that did not commit, oldest first,
// deleting and reporting unreadable ones. Only *.json files count (temp files do not).
func (w *WAL) ListIncomplete(ctx context.Context) ([]Op, []CorruptEntry, error) {
	return w.list(ctx, true)
}

// list reads the entries, deleting corrupt ones only when removeCorrupt is set.
func (w *WAL) list(ctx context.Context, removeCorrupt bool) ([]Op, []CorruptEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	des, err := os.ReadDir(w.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, wrap("wal list", err)
	}
	var ops []Op
	var bad []CorruptEntry
	for _, de := range des {
		name := de.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
			continue
		}
		p := filepath.Join(w.dir, name)
		b, err := os.ReadFile(p)
		var op Op
		if err == nil {
			op, err = DecodeOp(b)
		}
		if err != nil {
			bad = append(bad, CorruptEntry{Name: name, Err: err})
			if removeCorrupt {
				w.log.Warn(fmt.Sprintf("removing corrupt WAL entry '%s': %v", name, err))
				_ = os.Remove(p)
			}
			continue
		}
		ops = append(ops, op)
	}
	sort.SliceStable(ops, func(i, j int) bool {
		if ops[i].Timestamp != ops[j].Timestamp {
			return ops[i].Timestamp < ops[j].Timestamp
		}
		return ops[i].OpID < ops[j].OpID
	})
	return ops, bad, nil
}

// Recovery reports what Recover did.
type Recovery struct {
	RolledBack []Op           // entries whose steps were applied and which were deleted
	Corrupt    []CorruptEntry // unreadable entries, deleted
	Failed     []error        // steps that failed; their entries are kept for a retry
}

// Recover rolls back every incomplete operation, oldest first, applying its steps in
// reverse order. Steps naming paths outside the store are refused and dropped. An
// entry whose steps all succeeded (or were refused) is deleted; one with a failed step
// is kept so the next recovery retries it. A deleted entry of the reserved entry's
// size, or a claim of it a crash left, becomes the reserve again (walreserve.go). Run
// it under the exclusive store lock.
func (w *WAL) Recover(ctx context.Context) (Recovery, error) {
	var rep Recovery
	ops, bad, err := w.ListIncomplete(ctx)
	rep.Corrupt = bad
	if err != nil {
		return rep, err
	}
	for _, op := range ops {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		failed := false
		for i := len(op.RollbackSteps) - 1; i >= 0; i-- {
			s := op.RollbackSteps[i]
			if err := w.apply(ctx, s); err != nil {
				if errors.Is(err, ErrUnsafePath) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrInvalidID) {
					w.log.Warn(fmt.Sprintf("WAL %s: refusing rollback step %s: %v", op.OpID, s.Kind, err))
					continue
				}
				w.log.Warn(fmt.Sprintf("WAL %s: rollback step %s failed: %v", op.OpID, s.Kind, err))
				rep.Failed = append(rep.Failed, fmt.Errorf("wal %s: %s: %w", op.OpID, s.Kind, err))
				failed = true
			}
		}
		if failed {
			continue
		}
		w.mu.Lock()
		_ = w.retire(op.OpID)
		w.mu.Unlock()
		rep.RolledBack = append(rep.RolledBack, op)
	}
	if len(rep.RolledBack) > 0 {
		_ = syncDir(w.dir)
	}
	w.mu.Lock()
	if _, err := w.reclaim(); err != nil && !errors.Is(err, fs.ErrNotExist) {
		w.log.Warn("WAL: cannot take back the reserved entry", "err", err)
	}
	w.mu.Unlock()
	return rep, nil
}

// checkStep validates a step before it is logged or applied.
func (w *WAL) checkStep(s Step) error {
	switch s.Kind {
	case StepRemoveDir, StepRemoveFile:
		return w.inside(s.Path)
	case StepRename:
		if err := w.inside(s.From); err != nil {
			return err
		}
		return w.inside(s.To)
	case StepResetState:
		if _, err := ParseID(s.EnvID); err != nil {
			return err
		}
		_, err := ParseState(s.TargetState)
		return err
	}
	return fmt.Errorf("%w: unknown rollback step %q", ErrCorrupt, s.Kind)
}

// inside accepts an absolute, clean path strictly inside the store root whose
// directories below the root are not symlinks (so a delete cannot be redirected).
func (w *WAL) inside(p string) error {
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return fmt.Errorf("%w: %q is not an absolute clean path", ErrUnsafePath, p)
	}
	rel, err := filepath.Rel(w.root, p)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Errorf("%w: %q", ErrUnsafePath, p)
	}
	cur := w.root
	parts := strings.Split(rel, "/")
	for _, c := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return fmt.Errorf("%w: %q goes through %s, which is not a directory", ErrUnsafePath, p, cur)
		}
	}
	return nil
}

func (w *WAL) apply(ctx context.Context, s Step) error {
	if err := w.checkStep(s); err != nil {
		return err
	}
	switch s.Kind {
	case StepRemoveDir:
		return w.layout.RemoveTree(s.Path)
	case StepRemoveFile:
		return removeFile(ctx, s.Path)
	case StepRename:
		if _, err := os.Lstat(s.From); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err := w.layout.RemoveTree(s.To); err != nil {
			return err
		}
		if err := os.Rename(s.From, s.To); err != nil {
			return err
		}
		return syncDir(filepath.Dir(s.To))
	case StepResetState:
		id, _ := ParseID(s.EnvID)
		st, _ := ParseState(s.TargetState)
		b, err := os.ReadFile(w.envs.Path(id))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		m, err := decodeMetadata(b, false)
		if err != nil {
			return err
		}
		m.State = st
		m.UpdatedAt = w.envs.Now()
		return w.envs.Put(ctx, m)
	}
	return nil
}

// swapSuffix names the aside copy of a directory replaced by SwapDir.
const swapSuffix = ".swap-old"

// SwapDir replaces the directory target with staged as part of operation opID, so that
// a crash at any point rolls back to the old target: it logs the rollback, moves target
// aside to target+".swap-old", then renames staged onto target. It returns the aside
// path, which the caller deletes after committing the operation (GC removes one left
// by a crash). staged and target must be on one filesystem, inside the store.
func (w *WAL) SwapDir(ctx context.Context, opID, staged, target string) (string, error) {
	old := target + swapSuffix
	if err := w.inside(old); err != nil {
		return "", wrap("swap", err)
	}
	if err := w.layout.RemoveTree(old); err != nil {
		return "", wrap("swap", err)
	}
	_, err := os.Lstat(target)
	hadTarget := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", wrap("swap", err)
	}
	if hadTarget {
		if err := w.AddStep(ctx, opID, RenameStep(old, target)); err != nil {
			return "", err
		}
		if err := os.Rename(target, old); err != nil {
			return "", wrap("swap", err)
		}
	} else if err := w.AddStep(ctx, opID, RemoveDirStep(target)); err != nil {
		return "", err
	}
	if err := w.layout.mkdir(filepath.Dir(target)); err != nil {
		return "", wrap("swap", err)
	}
	if err := os.Rename(staged, target); err != nil {
		return "", wrap("swap", err)
	}
	return old, wrap("swap", syncDir(filepath.Dir(target)))
}
