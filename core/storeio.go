package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// stores is the engine's one door into the store module: every read and write of
// objects, layers, metadata, the WAL, GC, verification, migration and the lock goes
// through it, converting between the store's types and the engine's.
type stores struct {
	*store.Store
	layout  store.Layout
	objects *store.Objects
	layers  *store.Layers
	envs    *store.Envs
	log     *slog.Logger
	now     func() time.Time
}

func newStores(l store.Layout, log *slog.Logger, now func() time.Time, removeTree func(string) error) *stores {
	st := store.New(l.Root(), store.Options{Logger: log, Now: now, RemoveTree: removeTree})
	return &stores{
		Store: st, layout: st.Layout, objects: st.Objects, layers: st.Layers,
		envs: st.Envs, log: log, now: now,
	}
}

func (s *stores) timestamp() string { return store.FormatTime(s.now()) }

// tryLock makes one attempt at the exclusive store lock; held reports that someone
// else has it (holder says who, when known).
func (s *stores) tryLock(op string) (func(), bool, string, error) {
	return s.tryLockMode(store.Exclusive)
}

func (s *stores) tryLockMode(mode store.LockMode) (func(), bool, string, error) {
	lk, err := s.layout.TryLock(mode)
	if err != nil {
		var le *store.LockedError
		if errors.As(err, &le) {
			return nil, true, le.Holder, err
		}
		return nil, false, "", err
	}
	return func() {
		if err := lk.Unlock(); err != nil {
			s.log.Warn("store unlock", "err", err)
		}
	}, false, "", nil
}

// --- objects ---

func (s *stores) putObject(ctx context.Context, b []byte) (schema.Digest, error) {
	return s.objects.PutBytes(ctx, b)
}

func (s *stores) manifest(ctx context.Context, hash string) (*schema.Normalized, error) {
	d, err := schema.ParseDigest(hash)
	if err != nil {
		return nil, fmt.Errorf("%w: manifest hash: %v", store.ErrCorrupt, err)
	}
	b, err := s.objects.Get(ctx, d)
	if err != nil {
		return nil, err
	}
	return schema.DecodeNormalized(b)
}

// packObject packs dir into a deterministic tar stored as an object, streaming.
func (s *stores) packObject(ctx context.Context, dir string) (schema.Digest, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(store.Pack(ctx, dir, pw, s.log)) }()
	d, err := s.objects.Put(ctx, pr)
	pr.CloseWithError(err)
	return d, err
}

func (s *stores) unpackObject(ctx context.Context, d schema.Digest, target string) error {
	r, err := s.objects.Open(ctx, d)
	if err != nil {
		return err
	}
	defer r.Close()
	return store.Unpack(ctx, r, target, store.UnpackOptions{Overlay: true})
}

// captureBase stores an environment's base layer: the packed upper directory (the
// empty byte string when there is none, as the original) and a Base layer manifest.
func (s *stores) captureBase(ctx context.Context, upper string) (schema.Digest, error) {
	var tar schema.Digest
	var err error
	if _, serr := os.Lstat(upper); errors.Is(serr, fs.ErrNotExist) {
		tar, err = s.objects.PutBytes(ctx, nil)
	} else {
		tar, err = s.packObject(ctx, upper)
	}
	if err != nil {
		return schema.Digest{}, err
	}
	return s.layerPut(ctx, store.Layer{
		Hash: tar, Kind: store.KindBase, ObjectRefs: []schema.Digest{tar}, ReadOnly: true, TarHash: tar,
	})
}

// --- layers ---

func (s *stores) layerPath(k schema.Digest) string { return s.layers.Path(k) }

func (s *stores) layerKey(l store.Layer) (schema.Digest, error) { return l.Digest() }

func (s *stores) layerExists(ctx context.Context, k schema.Digest) bool {
	ok, err := s.layers.Exists(ctx, k)
	return err == nil && ok
}

// layerComplete reports whether layer k and every object it names are stored.
func (s *stores) layerComplete(ctx context.Context, k schema.Digest) bool {
	l, err := s.layerGet(ctx, k)
	if err != nil {
		return false
	}
	for _, o := range l.ObjectRefs {
		if _, err := os.Lstat(s.objects.Path(o)); err != nil {
			return false
		}
	}
	return true
}

func (s *stores) layerPut(ctx context.Context, l store.Layer) (schema.Digest, error) {
	return s.layers.Put(ctx, l)
}

func (s *stores) layerGet(ctx context.Context, k schema.Digest) (store.Layer, error) {
	return s.layers.Get(ctx, k)
}

func (s *stores) layerList(ctx context.Context) ([]schema.Digest, error) { return s.layers.List(ctx) }

// --- metadata ---

func hexOrEmpty(d schema.Digest) string {
	if d.IsZero() {
		return ""
	}
	return d.String()
}

func digestOrZero(s string) (schema.Digest, error) {
	if s == "" {
		return schema.Digest{}, nil
	}
	return schema.ParseDigest(s)
}

// envOf converts a store record to the engine's Env.
func envOf(m store.Metadata) Env {
	st, _ := ParseState(string(m.State))
	e := Env{
		EnvID: m.EnvID, ShortID: m.ShortID, State: st,
		ManifestHash: hexOrEmpty(m.ManifestHash), BaseLayer: hexOrEmpty(m.BaseLayer),
		DependencyLayers: make([]string, 0, len(m.DependencyLayers)),
		CreatedAt:        m.CreatedAt, UpdatedAt: m.UpdatedAt, RefCount: m.RefCount,
		Checksum: hexOrEmpty(m.Checksum),
	}
	if m.Name != "" {
		n := m.Name
		e.Name = &n
	}
	for _, d := range m.DependencyLayers {
		e.DependencyLayers = append(e.DependencyLayers, d.String())
	}
	if !m.PolicyLayer.IsZero() {
		p := m.PolicyLayer.String()
		e.PolicyLayer = &p
	}
	return e
}

// metaOf converts the engine's Env to a store record.
func metaOf(e *Env) (store.Metadata, error) {
	st, err := store.ParseState(stateNames[e.State])
	if err != nil {
		return store.Metadata{}, err
	}
	m := store.Metadata{
		EnvID: e.EnvID, ShortID: e.ShortID, Name: e.DisplayName(), State: st,
		CreatedAt: e.CreatedAt, UpdatedAt: e.UpdatedAt, RefCount: e.RefCount,
	}
	if m.ManifestHash, err = digestOrZero(e.ManifestHash); err != nil {
		return m, err
	}
	if m.BaseLayer, err = digestOrZero(e.BaseLayer); err != nil {
		return m, err
	}
	if e.PolicyLayer != nil {
		if m.PolicyLayer, err = digestOrZero(*e.PolicyLayer); err != nil {
			return m, err
		}
	}
	for _, d := range e.DependencyLayers {
		dd, err := schema.ParseDigest(d)
		if err != nil {
			return m, err
		}
		m.DependencyLayers = append(m.DependencyLayers, dd)
	}
	return m, nil
}

func (s *stores) metaPath(id schema.EnvID) string { return s.envs.Path(id) }

// metaGet reads an environment's record with its live state (see liveState).
func (s *stores) metaGet(ctx context.Context, id schema.EnvID) (*Env, error) {
	e, err := s.metaGetRecorded(ctx, id)
	if err != nil {
		return nil, err
	}
	e.State = liveState(e.State, s.layout.EnvPath(id))
	return e, nil
}

// metaGetRecorded reads an environment's record with the state as written.
func (s *stores) metaGetRecorded(ctx context.Context, id schema.EnvID) (*Env, error) {
	m, err := s.envs.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	e := envOf(m)
	return &e, nil
}

func (s *stores) metaPut(ctx context.Context, e *Env) error {
	m, err := metaOf(e)
	if err != nil {
		return err
	}
	return s.envs.Put(ctx, m)
}

func (s *stores) metaRemove(ctx context.Context, id schema.EnvID) error {
	return s.envs.Remove(ctx, id)
}

// metaEach calls fn with every readable record, in env id order, with its live state
// (see liveState); corrupt ones are logged and skipped.
// The conversion and the look at the sessions run on the store's reading goroutines,
// in parallel; fn sees the environments in order on the caller's.
func (s *stores) metaEach(ctx context.Context, fn func(*Env) error) error {
	return store.EachMapped(ctx, s.envs, func(m store.Metadata) Env {
		e := envOf(m)
		e.State = liveState(e.State, s.layout.EnvPath(e.EnvID))
		return e
	}, func(e Env) error { return fn(&e) })
}

func (s *stores) setState(ctx context.Context, e *Env, st State) error {
	e.State = st
	e.UpdatedAt = s.timestamp()
	return s.metaPut(ctx, e)
}

func (s *stores) checkName(name string) error { return store.ValidateName(name) }

func (s *stores) checkNameFree(ctx context.Context, name string, id schema.EnvID) error {
	if err := store.ValidateName(name); err != nil {
		return err
	}
	m, err := s.envs.GetByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.EnvID != id {
		return &store.NameConflictError{Name: name, ExistingEnvID: m.EnvID.Short()}
	}
	return nil
}

func (s *stores) setName(ctx context.Context, id schema.EnvID, name string) error {
	if name == "" {
		return store.ValidateName(name)
	}
	return s.envs.SetName(ctx, id, name)
}

// --- WAL ---

// walStep is a rollback step.
type walStep = store.Step

func removeDir(p string) walStep  { return store.RemoveDirStep(p) }
func removeFile(p string) walStep { return store.RemoveFileStep(p) }

// walBegin opens a WAL entry holding steps, in order, written at once: the entry
// appears with all of them or not at all, and on an error no entry is left and the
// op id is "".
func (s *stores) walBegin(ctx context.Context, kind, envID string, steps ...walStep) (string, error) {
	return s.WAL.Begin(ctx, store.OpKind(kind), envID, steps...)
}

func (s *stores) walRemoveFile(ctx context.Context, op, p string) error {
	return s.WAL.AddStep(ctx, op, store.RemoveFileStep(p))
}

func (s *stores) walCommit(ctx context.Context, op string) error { return s.WAL.Commit(ctx, op) }

// walRollback rolls back one operation of ours now. The caller holds the exclusive
// lock, under which no other operation is in flight and every entry is stale or
// ours, so a full recovery rolls back exactly this one (plus any stale ones).
func (s *stores) walRollback(ctx context.Context, op string) error {
	_, err := s.walRecover(ctx)
	return err
}

func (s *stores) walRecover(ctx context.Context) (int, error) {
	rec, err := s.WAL.Recover(ctx)
	if err != nil {
		return len(rec.RolledBack), err
	}
	if len(rec.Failed) > 0 {
		return len(rec.RolledBack), fmt.Errorf("%d rollback steps failed (kept for a retry): %w", len(rec.Failed), errors.Join(rec.Failed...))
	}
	return len(rec.RolledBack), nil
}

// --- GC, verify, migrate ---

func (s *stores) gc(ctx context.Context, dryRun bool) (*GCReport, error) {
	r, err := s.Store.GC(ctx, store.GCOptions{DryRun: dryRun})
	return &GCReport{
		DryRun: r.DryRun, OrphanedEnvs: nonNil(r.OrphanedEnvs), OrphanedLayers: nonNil(r.OrphanedLayers),
		OrphanedObjects: nonNil(r.OrphanedObjects), RemovedEnvs: r.RemovedEnvs, RemovedLayers: r.RemovedLayers,
		RemovedObjects: r.RemovedObjects,
	}, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *stores) verify(ctx context.Context) (*VerifyReport, error) {
	r, err := s.Store.Verify(ctx)
	if err != nil {
		return nil, err
	}
	rep := &VerifyReport{
		Checked: r.Checked, Passed: r.Passed, Failed: []VerifyFailure{},
		LayersChecked: r.LayersChecked, LayersPassed: r.LayersPassed,
		MetadataChecked: r.MetadataChecked, MetadataPassed: r.MetadataPassed,
		RefsChecked: r.RefsChecked, RefsPassed: r.RefsPassed,
	}
	for _, f := range r.Failed {
		if s.vanished(f) {
			continue
		}
		rep.Failed = append(rep.Failed, VerifyFailure{
			Kind: f.Kind, Hash: f.Hash, Reason: f.Reason,
			Missing: f.Missing, Field: f.Field, EnvID: f.EnvID, Layer: f.Layer,
		})
	}
	return rep, nil
}

// vanished reports whether a failed item no longer exists: removed while Verify ran.
// (Store.Verify settles dangling references itself; their Hash names what is missing.)
func (s *stores) vanished(f store.IntegrityFailure) bool {
	d, err := schema.ParseDigest(f.Hash)
	if err != nil {
		return false
	}
	var p string
	switch f.Kind {
	case "object":
		p = s.objects.Path(d)
	case "layer":
		p = s.layers.Path(d)
	case "metadata":
		p = s.envs.Path(d)
	default:
		return false
	}
	_, err = os.Lstat(p)
	return errors.Is(err, fs.ErrNotExist)
}

func (s *stores) migrate(ctx context.Context) (*MigrateResult, error) {
	r, err := store.Migrate(ctx, s.layout.Root(), s.now, s.log)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return &MigrateResult{Status: MigrateCurrent, FromVersion: store.FormatVersion, ToVersion: store.FormatVersion}, nil
	}
	return &MigrateResult{
		Status: MigrateMigrated, FromVersion: r.FromVersion, ToVersion: r.ToVersion,
		Environments: r.EnvironmentsMigrated, BackupPath: r.BackupPath,
	}, nil
}
