package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/karapace/karapace/schema"
)

// State is an environment's lifecycle state; its JSON is the PascalCase name.
type State string

// Environment states.
const (
	StateDefined  State = "Defined"
	StateBuilt    State = "Built"
	StateRunning  State = "Running"
	StateFrozen   State = "Frozen"
	StateArchived State = "Archived"
)

// ParseState accepts the PascalCase and the lowercase spelling.
func ParseState(s string) (State, error) {
	for _, st := range []State{StateDefined, StateBuilt, StateRunning, StateFrozen, StateArchived} {
		if s == string(st) || s == st.String() {
			return st, nil
		}
	}
	return "", fmt.Errorf("%w: unknown state %q", ErrCorrupt, s)
}

// String is the lowercase display form used in messages ("built").
func (s State) String() string {
	switch s {
	case StateDefined:
		return "defined"
	case StateBuilt:
		return "built"
	case StateRunning:
		return "running"
	case StateFrozen:
		return "frozen"
	case StateArchived:
		return "archived"
	}
	return string(s)
}

// Metadata is an environment record, <root>/store/metadata/<env id>. Zero digests stand
// for the original's empty strings (ManifestHash, BaseLayer of an init-only env) or null
// (PolicyLayer); an empty Name is null.
type Metadata struct {
	EnvID            schema.EnvID
	ShortID          string
	Name             string
	State            State
	ManifestHash     schema.Digest
	BaseLayer        schema.Digest
	DependencyLayers []schema.Digest
	PolicyLayer      schema.Digest
	CreatedAt        string
	UpdatedAt        string
	RefCount         uint32
	// Checksum is the checksum found on disk by Get (zero for legacy records without
	// one). Put ignores it and writes a fresh one.
	Checksum schema.Digest
}

// metadataJSON is the exact JSON shape of the original, field order included.
type metadataJSON struct {
	EnvID            string   `json:"env_id"`
	ShortID          string   `json:"short_id"`
	Name             *string  `json:"name"`
	State            State    `json:"state"`
	ManifestHash     string   `json:"manifest_hash"`
	BaseLayer        string   `json:"base_layer"`
	DependencyLayers []string `json:"dependency_layers"`
	PolicyLayer      *string  `json:"policy_layer"`
	CreatedAt        string   `json:"created_at"`
	UpdatedAt        string   `json:"updated_at"`
	RefCount         uint32   `json:"ref_count"`
	Checksum         *string  `json:"checksum,omitempty"`
}

func hexOrEmpty(d schema.Digest) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func (m Metadata) wire() metadataJSON {
	w := metadataJSON{
		EnvID: m.EnvID.String(), ShortID: m.ShortID, State: m.State,
		ManifestHash: hexOrEmpty(m.ManifestHash), BaseLayer: hexOrEmpty(m.BaseLayer),
		DependencyLayers: digestStrings(m.DependencyLayers),
		CreatedAt:        m.CreatedAt, UpdatedAt: m.UpdatedAt, RefCount: m.RefCount,
	}
	if m.Name != "" {
		n := m.Name
		w.Name = &n
	}
	if !m.PolicyLayer.IsZero() {
		p := m.PolicyLayer.String()
		w.PolicyLayer = &p
	}
	return w
}

// checksumOf is the BLAKE3 of the pretty JSON without the checksum key.
func checksumOf(w metadataJSON) (schema.Digest, error) {
	w.Checksum = nil
	b, err := schema.MarshalPretty(w)
	if err != nil {
		return schema.Digest{}, err
	}
	return schema.Sum(b), nil
}

// ComputeChecksum returns the checksum the original stores for m.
func (m Metadata) ComputeChecksum() (schema.Digest, error) { return checksumOf(m.wire()) }

// Encode returns the file content for m: pretty JSON with a fresh checksum as the last
// key, byte-identical to the original's.
func (m Metadata) Encode() ([]byte, error) {
	w := m.wire()
	sum, err := checksumOf(w)
	if err != nil {
		return nil, err
	}
	s := sum.String()
	w.Checksum = &s
	return schema.MarshalPretty(w)
}

// DecodeMetadata parses a metadata file and verifies its checksum when it has one
// (legacy files without a checksum, or with "checksum": null, are accepted). The
// checksum is recomputed from the parsed fields, as the original does, so unknown keys
// do not count. A mismatch is an *IntegrityError.
func DecodeMetadata(b []byte) (Metadata, error) { return decodeVerified(b, nil) }

// decodeVerified is DecodeMetadata with a hasher to reuse (nil allocates one).
func decodeVerified(b []byte, h *schema.Hash) (Metadata, error) {
	if m, ok := scanMetadata(b, h); ok {
		return m, nil
	}
	return decodeMetadata(b, true)
}

// decodeMetadata parses metadata, verifying the checksum only when verify is set (WAL
// recovery resets states of records it cannot vouch for, as the original does).
func decodeMetadata(b []byte, verify bool) (Metadata, error) {
	var m Metadata
	if err := requireKeys(b, "env_id", "short_id", "state", "manifest_hash", "base_layer",
		"dependency_layers", "created_at", "updated_at", "ref_count"); err != nil {
		return m, err
	}
	var w metadataJSON
	if err := json.Unmarshal(b, &w); err != nil {
		return m, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if w.Checksum != nil && verify {
		sum, err := checksumOf(w)
		if err != nil {
			return m, err
		}
		if sum.String() != *w.Checksum {
			return m, &IntegrityError{What: "metadata", Name: w.EnvID, Expected: *w.Checksum, Actual: sum.String()}
		}
		if m.Checksum, err = parseField("checksum", *w.Checksum); err != nil {
			return m, err
		}
	}
	if st, err := ParseState(string(w.State)); err != nil || st != w.State {
		return m, fmt.Errorf("%w: state %q", ErrCorrupt, w.State)
	}
	var err error
	m.ShortID, m.State, m.CreatedAt, m.UpdatedAt, m.RefCount = w.ShortID, w.State, w.CreatedAt, w.UpdatedAt, w.RefCount
	if w.Name != nil {
		m.Name = *w.Name
	}
	if m.EnvID, err = parseField("env_id", w.EnvID); err != nil {
		return m, err
	}
	for _, f := range []struct {
		name string
		s    string
		d    *schema.Digest
	}{{"manifest_hash", w.ManifestHash, &m.ManifestHash}, {"base_layer", w.BaseLayer, &m.BaseLayer}} {
		if f.s != "" {
			if *f.d, err = parseField(f.name, f.s); err != nil {
				return m, err
			}
		}
	}
	if w.PolicyLayer != nil {
		if m.PolicyLayer, err = parseField("policy_layer", *w.PolicyLayer); err != nil {
			return m, err
		}
	}
	if m.DependencyLayers, err = parseDigests("dependency_layers", w.DependencyLayers); err != nil {
		return m, err
	}
	return m, nil
}

// ValidateName checks an environment name: 1 to 64 bytes of [A-Za-z0-9_-].
func ValidateName(n string) error {
	if len(n) < 1 || len(n) > 64 {
		return fmt.Errorf("%w: environment name must be 1-64 characters", ErrInvalidName)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w: environment name must match [a-zA-Z0-9_-]", ErrInvalidName)
		}
	}
	return nil
}

// Envs stores environment metadata. Read-modify-write methods (UpdateState, SetName,
// IncrementRef, ...) are safe only under the exclusive store lock.
type Envs struct {
	layout Layout
	dir    string
	now    func() time.Time
	log    *slog.Logger
}

// NewEnvs returns the metadata store of a layout. now and log may be nil.
func NewEnvs(l Layout, now func() time.Time, log *slog.Logger) *Envs {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Envs{layout: l, dir: l.MetadataDir(), now: now, log: log}
}

// Path is the metadata file of env id.
func (s *Envs) Path(id schema.EnvID) string { return filepath.Join(s.dir, id.String()) }

// Now returns the current time in the store's timestamp format.
func (s *Envs) Now() string { return FormatTime(s.now()) }

// Put writes m with a fresh checksum. A non-empty name must be valid, and when it is
// new for this environment, not used by another one (*NameConflictError).
func (s *Envs) Put(ctx context.Context, m Metadata) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.Name != "" {
		if err := ValidateName(m.Name); err != nil {
			return wrap("put metadata "+m.EnvID.String(), err)
		}
		if err := s.checkNameFree(ctx, m.EnvID, m.Name); err != nil {
			return wrap("put metadata "+m.EnvID.String(), err)
		}
	}
	b, err := m.Encode()
	if err != nil {
		return wrap("put metadata "+m.EnvID.String(), err)
	}
	if err := s.layout.mkdir(s.dir); err != nil {
		return wrap("put metadata", err)
	}
	return wrap("put metadata "+m.EnvID.String(), writeFileAtomic(s.Path(m.EnvID), b))
}

// Get reads and verifies the metadata of env id. A missing record is ErrNotFound; a
// checksum mismatch is an *IntegrityError, never reported as "not found".
func (s *Envs) Get(ctx context.Context, id schema.EnvID) (Metadata, error) {
	m, err := s.get(ctx, id)
	return m, wrap("get metadata", err)
}

func (s *Envs) get(ctx context.Context, id schema.EnvID) (Metadata, error) {
	if err := ctx.Err(); err != nil {
		return Metadata{}, err
	}
	b, err := readRecord(s.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return Metadata{}, &NotFoundError{What: "environment", Key: id.String()}
	}
	if err != nil {
		return Metadata{}, err
	}
	return verifyRecord(b, id, nil)
}

// Exists reports whether env id has a metadata file.
func (s *Envs) Exists(ctx context.Context, id schema.EnvID) (bool, error) {
	return exists(ctx, s.Path(id))
}

// Remove deletes the metadata of env id; a missing record is not an error.
func (s *Envs) Remove(ctx context.Context, id schema.EnvID) error {
	return wrap("remove metadata "+id.String(), removeFile(ctx, s.Path(id)))
}

// Entry is one metadata file as ListWithErrors sees it: Err is set when it could not be
// read, parsed or verified.
type Entry struct {
	Name string
	Meta Metadata
	Err  error
}

// ListWithErrors reads every metadata file (regular, non-dot files), sorted by file
// name, reporting unreadable, corrupt or misnamed ones instead of skipping them.
func (s *Envs) ListWithErrors(ctx context.Context) ([]Entry, error) {
	var out []Entry
	err := s.Walk(ctx, func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// List returns every readable record sorted by env id; corrupt records are logged and
// skipped (use ListWithErrors to see them).
func (s *Envs) List(ctx context.Context) ([]Metadata, error) {
	var out []Metadata
	err := s.Each(ctx, func(m Metadata) error {
		out = append(out, m)
		return nil
	})
	return out, err
}

// Each calls fn with every readable record in env id order, as List would return
// them, without holding them all; corrupt records are logged and skipped. An error
// from fn stops the walk and is returned.
func (s *Envs) Each(ctx context.Context, fn func(Metadata) error) error {
	return s.Walk(ctx, func(e Entry) error {
		if e.Err != nil {
			s.skip(e.Name, e.Err)
			return nil
		}
		return fn(e.Meta)
	})
}

// EachMapped is Each with a conversion done off the caller's goroutine: conv turns
// each readable record into a T on the goroutines that read the records, in parallel
// (so it must be safe for concurrent use; it may do I/O of its own), and fn receives
// the Ts in env id order. Corrupt records are logged and skipped.
func EachMapped[T any](ctx context.Context, s *Envs, conv func(Metadata) T, fn func(T) error) error {
	type item struct {
		v    T
		name string
		err  error
	}
	return walkMapped(ctx, s, func(e Entry) item {
		if e.Err != nil {
			return item{name: e.Name, err: e.Err}
		}
		return item{v: conv(e.Meta)}
	}, func(it item) error {
		if it.err != nil {
			s.skip(it.name, it.err)
			return nil
		}
		return fn(it.v)
	})
}

// skip reports a record Each leaves out. One removed since the directory was read (a
// destroy that ran meanwhile) is no corruption: it is left out without a warning.
func (s *Envs) skip(name string, err error) {
	if errors.Is(err, ErrNotFound) {
		s.log.Debug("metadata entry removed while listing", "env", name)
		return
	}
	s.log.Warn(fmt.Sprintf("skipping corrupted metadata entry '%s': %v", name, err))
}

// walkBatch is how many records Walk reads ahead of fn: enough to keep every core
// busy, few enough that a store of any size costs little memory.
const walkBatch = 256

// Walk calls fn with every metadata file (regular, non-dot files) in file name order,
// as ListWithErrors reports them: a file that cannot be read, parsed or verified, or
// whose name is not the env id it holds, comes with Err set. File names of valid
// records are their env ids in lowercase hex, so this is env id order too. Files are
// read and verified in parallel, a batch at a time; fn runs on the caller's goroutine,
// and an error from it stops the walk and is returned.
func (s *Envs) Walk(ctx context.Context, fn func(Entry) error) error {
	return walkMapped(ctx, s, func(e Entry) Entry { return e }, fn)
}

// walkMapped is Walk with conv applied to each entry on the reading goroutines.
func walkMapped[T any](ctx context.Context, s *Envs, conv func(Entry) T, fn func(T) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	names, odd, err := recordNames(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return wrap("list metadata", err)
	}
	if len(names) == 0 {
		return nil
	}
	dir, err := openDir(s.dir)
	if err != nil {
		return wrap("list metadata", err)
	}
	defer dir.close()
	// Batch k+1 is read while fn sees batch k; each of the two batches in flight has
	// its own entries and readers.
	workers := min(runtime.GOMAXPROCS(0), 8, (len(names)+63)/64)
	var slots [2]walkSlot[T]
	for i := range slots {
		slots[i] = walkSlot[T]{out: make([]T, walkBatch), readers: make([]metaReader, workers), conv: conv, odd: odd}
	}
	nbatch := (len(names) + walkBatch - 1) / walkBatch
	startBatch := func(k int) chan struct{} {
		chunk := names[k*walkBatch : min((k+1)*walkBatch, len(names))]
		done := make(chan struct{})
		go func() {
			slots[k%2].read(dir, chunk)
			close(done)
		}()
		return done
	}
	pending := startBatch(0)
	defer func() {
		if pending != nil {
			<-pending // never leave a reader running on the closed directory
		}
	}()
	for k := range nbatch {
		var next chan struct{}
		if ctx.Err() == nil && k+1 < nbatch {
			next = startBatch(k + 1)
		}
		<-pending
		pending = next
		if err := ctx.Err(); err != nil {
			return err
		}
		slot := &slots[k%2]
		for i := range min(walkBatch, len(names)-k*walkBatch) {
			if err := fn(slot.out[i]); err != nil {
				return err
			}
			var zero T
			slot.out[i] = zero
		}
	}
	return nil
}

// recordNames returns the sorted names of the non-dot entries in dir, and the types of
// those that are not regular files (see readRecord: they are reported, never opened).
// It reads the directory a slice at a time and keeps only the names: for a large
// store the entries os.ReadDir would hold all at once cost more than the names.
func recordNames(dir string) ([]string, map[string]fs.FileMode, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	var names []string
	var odd map[string]fs.FileMode
	for {
		des, err := f.ReadDir(4096)
		for _, de := range des {
			name := de.Name()
			if name == "" || name[0] == '.' {
				continue
			}
			names = append(names, name)
			if t := de.Type(); !t.IsRegular() {
				if odd == nil {
					odd = map[string]fs.FileMode{}
				}
				odd[name] = t
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	slices.Sort(names)
	return names, odd, nil
}

// walkSlot holds one batch of Walk: its results and a reader per goroutine.
type walkSlot[T any] struct {
	out     []T
	readers []metaReader
	conv    func(Entry) T
	odd     map[string]fs.FileMode // the entries that are not regular files
}

// entry reads the entry named name with reader r, or reports it when it is no
// regular file.
func (w *walkSlot[T]) entry(r int, dir metaDir, name string) T {
	if t, ok := w.odd[name]; ok {
		return w.conv(Entry{Name: name, Err: wrap("get metadata", &fs.PathError{Op: "read", Path: filepath.Join(dir.path, name), Err: notRegular(t)})})
	}
	return w.conv(w.readers[r].read(dir, name))
}

// read fills out[i] with the converted entry of names[i], on one goroutine per reader.
func (w *walkSlot[T]) read(dir metaDir, names []string) {
	if len(w.readers) == 1 {
		for i, name := range names {
			w.out[i] = w.entry(0, dir, name)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for r := range w.readers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(names); i = int(next.Add(1) - 1) {
				w.out[i] = w.entry(r, dir, names[i])
			}
		})
	}
	wg.Wait()
}

// update applies fn to the verified record of id, stamps updated_at and writes it back.
func (s *Envs) update(ctx context.Context, id schema.EnvID, fn func(*Metadata) error) (Metadata, error) {
	m, err := s.Get(ctx, id)
	if err != nil {
		return m, err
	}
	if err := fn(&m); err != nil {
		return m, err
	}
	m.UpdatedAt = s.Now()
	return m, s.Put(ctx, m)
}

// UpdateState sets the state of env id. Transition rules are the engine's business.
func (s *Envs) UpdateState(ctx context.Context, id schema.EnvID, st State) error {
	if _, err := ParseState(string(st)); err != nil {
		return wrap("update state", err)
	}
	_, err := s.update(ctx, id, func(m *Metadata) error { m.State = st; return nil })
	return err
}

// IncrementRef adds one to the reference count and returns the new count.
func (s *Envs) IncrementRef(ctx context.Context, id schema.EnvID) (uint32, error) {
	m, err := s.update(ctx, id, func(m *Metadata) error {
		if m.RefCount == ^uint32(0) {
			return wrap("increment ref", fmt.Errorf("%w: ref_count overflow", ErrCorrupt))
		}
		m.RefCount++
		return nil
	})
	return m.RefCount, err
}

// DecrementRef subtracts one (stopping at zero) and returns the new count.
func (s *Envs) DecrementRef(ctx context.Context, id schema.EnvID) (uint32, error) {
	m, err := s.update(ctx, id, func(m *Metadata) error {
		if m.RefCount > 0 {
			m.RefCount--
		}
		return nil
	})
	return m.RefCount, err
}

// GetByName returns the first environment (in env id order) with that name.
func (s *Envs) GetByName(ctx context.Context, name string) (Metadata, error) {
	all, err := s.List(ctx)
	if err != nil {
		return Metadata{}, err
	}
	for _, m := range all {
		if name != "" && m.Name == name {
			return m, nil
		}
	}
	return Metadata{}, &NotFoundError{What: "environment", Key: fmt.Sprintf("name '%s'", name)}
}

// SetName names env id, or clears its name when name is "". The name must be valid and
// not used by another environment (*NameConflictError); re-using its own name is fine.
func (s *Envs) SetName(ctx context.Context, id schema.EnvID, name string) error {
	if name != "" {
		if err := ValidateName(name); err != nil {
			return wrap("set name", err)
		}
	}
	_, err := s.update(ctx, id, func(m *Metadata) error { m.Name = name; return nil })
	return err
}

// checkNameFree fails when another environment uses name. Records that already carry
// this name (re-writes of the same environment) skip the scan.
func (s *Envs) checkNameFree(ctx context.Context, id schema.EnvID, name string) error {
	if b, err := os.ReadFile(s.Path(id)); err == nil {
		if old, err := decodeMetadata(b, false); err == nil && old.Name == name {
			return nil
		}
	}
	all, err := s.List(ctx)
	if err != nil {
		return err
	}
	for _, m := range all {
		if m.Name == name && m.EnvID != id {
			return &NameConflictError{Name: name, ExistingEnvID: m.EnvID.Short()}
		}
	}
	return nil
}
