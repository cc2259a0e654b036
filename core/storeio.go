package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// stores is the engine's one door into the store module: every read and write of
// objects, layers, metadata, the WAL, GC, verification, migration and the lock goes
// through it.
type stores struct {
	layout  store.Layout
	objects *store.Objects
	layers  *store.Layers
	envs    *store.Envs
	log     *slog.Logger
	now     func() time.Time
}

func newStores(l store.Layout, log *slog.Logger, now func() time.Time) *stores {
	return &stores{
		layout: l, objects: store.NewObjects(l), layers: store.NewLayers(l),
		envs: store.NewEnvs(l, now, log), log: log, now: now,
	}
}

func (s *stores) timestamp() string { return store.FormatTime(s.now()) }

// --- lock (interim: flock on store/.lock) ---

func (s *stores) tryLock(op string) (func(), bool, string, error) {
	if err := os.MkdirAll(s.layout.StoreDir(), 0o755); err != nil {
		return nil, false, "", err
	}
	f, err := os.OpenFile(s.layout.LockFile(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, "", err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, true, "", err
		}
		return nil, false, "", err
	}
	return func() { f.Close() }, false, "", nil
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

func (s *stores) layerPut(ctx context.Context, l store.Layer) (schema.Digest, error) {
	return s.layers.Put(ctx, l)
}

func (s *stores) layerGet(ctx context.Context, k schema.Digest) (store.Layer, error) {
	return s.layers.Get(ctx, k)
}

func (s *stores) layerList(ctx context.Context) ([]schema.Digest, error) { return s.layers.List(ctx) }

func listDigests(dir string) ([]schema.Digest, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []schema.Digest
	for _, e := range ents {
		if d, err := schema.ParseDigest(e.Name()); err == nil {
			out = append(out, d)
		}
	}
	return out, nil
}

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

func (s *stores) metaGet(ctx context.Context, id schema.EnvID) (*Env, error) {
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

func (s *stores) metaList(ctx context.Context) ([]Env, error) {
	ms, err := s.envs.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Env, 0, len(ms))
	for _, m := range ms {
		out = append(out, envOf(m))
	}
	return out, nil
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

// --- WAL (interim) ---

type walEntry struct {
	OpID          string            `json:"op_id"`
	Kind          string            `json:"kind"`
	EnvID         string            `json:"env_id"`
	Timestamp     string            `json:"timestamp"`
	RollbackSteps []json.RawMessage `json:"rollback_steps"`
}

func (s *stores) walPath(op string) string { return filepath.Join(s.layout.WALDir(), op+".json") }

var walSeq = time.Now().UnixNano()

// walStep is a rollback step given to walBegin.
type walStep map[string]string

func removeDir(p string) walStep  { return walStep{"RemoveDir": p} }
func removeFile(p string) walStep { return walStep{"RemoveFile": p} }

// walBegin writes a new WAL entry holding steps, in one atomic write.
func (s *stores) walBegin(ctx context.Context, kind, envID string, steps ...walStep) (string, error) {
	if err := os.MkdirAll(s.layout.WALDir(), 0o755); err != nil {
		return "", err
	}
	now := s.now().UTC()
	op := fmt.Sprintf("%s-%s-%d-%d", now.Format("20060102150405.000000000"), schema.SumString(envID).String()[:8], os.Getpid(), now.UnixNano())
	e := walEntry{OpID: op, Kind: kind, EnvID: envID, Timestamp: store.FormatTime(now), RollbackSteps: []json.RawMessage{}}
	for _, st := range steps {
		b, err := json.Marshal(st)
		if err != nil {
			return "", err
		}
		e.RollbackSteps = append(e.RollbackSteps, b)
	}
	return op, s.walWrite(&e)
}

func (s *stores) walWrite(e *walEntry) error {
	b, err := schema.MarshalPretty(e)
	if err != nil {
		return err
	}
	return atomicWrite(s.walPath(e.OpID), b)
}

func (s *stores) walRead(op string) (*walEntry, error) {
	b, err := os.ReadFile(s.walPath(op))
	if err != nil {
		return nil, err
	}
	var e walEntry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	return &e, nil
}

func (s *stores) walStep(op string, step any) error {
	e, err := s.walRead(op)
	if err != nil {
		return err
	}
	b, err := json.Marshal(step)
	if err != nil {
		return err
	}
	e.RollbackSteps = append(e.RollbackSteps, b)
	return s.walWrite(e)
}

func (s *stores) walRemoveDir(ctx context.Context, op, p string) error {
	return s.walStep(op, map[string]string{"RemoveDir": p})
}

func (s *stores) walRemoveFile(ctx context.Context, op, p string) error {
	return s.walStep(op, map[string]string{"RemoveFile": p})
}

func (s *stores) walCommit(ctx context.Context, op string) error {
	err := os.Remove(s.walPath(op))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *stores) walRollback(ctx context.Context, op string) error {
	e, err := s.walRead(op)
	if err != nil {
		return err
	}
	s.applyRollback(e)
	return s.walCommit(ctx, op)
}

func (s *stores) applyRollback(e *walEntry) {
	root := s.layout.Root() + string(filepath.Separator)
	for i := len(e.RollbackSteps) - 1; i >= 0; i-- {
		var step map[string]string
		if json.Unmarshal(e.RollbackSteps[i], &step) != nil {
			continue
		}
		for k, p := range step {
			if !strings.HasPrefix(filepath.Clean(p), root) {
				continue
			}
			switch k {
			case "RemoveDir":
				_ = os.RemoveAll(p)
			case "RemoveFile":
				_ = os.Remove(p)
			}
		}
	}
}

func (s *stores) walRecover(ctx context.Context) (int, error) {
	ents, err := os.ReadDir(s.layout.WALDir())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var entries []*walEntry
	for _, ent := range ents {
		if !strings.HasSuffix(ent.Name(), ".json") || strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		e, err := s.walRead(strings.TrimSuffix(ent.Name(), ".json"))
		if err != nil {
			_ = os.Remove(filepath.Join(s.layout.WALDir(), ent.Name()))
			continue
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Timestamp < entries[j].Timestamp })
	for _, e := range entries {
		s.applyRollback(e)
		_ = s.walCommit(ctx, e.OpID)
	}
	return len(entries), nil
}

func atomicWrite(p string, b []byte) error {
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp")
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	f.Close()
	if err := os.Rename(f.Name(), p); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// --- GC, verify, migrate (interim) ---

func (s *stores) gc(ctx context.Context, dryRun bool) (*GCReport, error) {
	rep := &GCReport{DryRun: dryRun, OrphanedEnvs: []string{}, OrphanedLayers: []string{}, OrphanedObjects: []string{}}
	envs, err := s.metaList(ctx)
	if err != nil {
		return rep, err
	}
	liveLayers, liveObjects := map[string]bool{}, map[string]bool{}
	for _, e := range envs {
		if e.RefCount == 0 && e.State != Running && e.State != Archived {
			rep.OrphanedEnvs = append(rep.OrphanedEnvs, e.EnvID.String())
			continue
		}
		liveLayers[e.BaseLayer] = true
		for _, d := range e.DependencyLayers {
			liveLayers[d] = true
		}
		if e.ManifestHash != "" {
			liveObjects[e.ManifestHash] = true
		}
	}
	layers, err := s.layerList(ctx)
	if err != nil {
		return rep, err
	}
	for _, k := range layers {
		if liveLayers[k.String()] {
			continue
		}
		if l, err := s.layerGet(ctx, k); err == nil && l.Kind == store.KindSnapshot && !l.Parent.IsZero() && liveLayers[l.Parent.String()] {
			liveLayers[k.String()] = true
		}
	}
	for _, k := range layers {
		if !liveLayers[k.String()] {
			rep.OrphanedLayers = append(rep.OrphanedLayers, k.String())
			continue
		}
		if l, err := s.layerGet(ctx, k); err == nil {
			for _, o := range l.ObjectRefs {
				liveObjects[o.String()] = true
			}
		}
	}
	objs, err := s.objects.List(ctx)
	if err != nil {
		return rep, err
	}
	for _, o := range objs {
		if !liveObjects[o.String()] {
			rep.OrphanedObjects = append(rep.OrphanedObjects, o.String())
		}
	}
	if dryRun {
		return rep, nil
	}
	for _, id := range rep.OrphanedEnvs {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		_ = os.RemoveAll(filepath.Join(s.layout.EnvDir(), id))
		_ = os.Remove(filepath.Join(s.layout.MetadataDir(), id))
		rep.RemovedEnvs++
	}
	for _, k := range rep.OrphanedLayers {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		_ = os.Remove(filepath.Join(s.layout.LayersDir(), k))
		rep.RemovedLayers++
	}
	for _, k := range rep.OrphanedObjects {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		_ = os.Remove(filepath.Join(s.layout.ObjectsDir(), k))
		rep.RemovedObjects++
	}
	return rep, nil
}

func (s *stores) verify(ctx context.Context) (*VerifyReport, error) {
	rep := &VerifyReport{Failed: []VerifyFailure{}}
	objs, err := s.objects.List(ctx)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		rep.Checked++
		if _, err := s.objects.Get(ctx, o); err != nil {
			rep.Failed = append(rep.Failed, VerifyFailure{Hash: o.String(), Reason: err.Error()})
			continue
		}
		rep.Passed++
	}
	layers, err := s.layerList(ctx)
	if err != nil {
		return nil, err
	}
	for _, k := range layers {
		rep.LayersChecked++
		if _, err := s.layerGet(ctx, k); err != nil {
			rep.Failed = append(rep.Failed, VerifyFailure{Hash: k.String(), Reason: err.Error()})
			continue
		}
		rep.LayersPassed++
	}
	entries, err := s.envs.ListWithErrors(ctx)
	if err != nil {
		return nil, err
	}
	for _, en := range entries {
		rep.MetadataChecked++
		if en.Err != nil {
			rep.Failed = append(rep.Failed, VerifyFailure{Hash: en.Name, Reason: en.Err.Error()})
			continue
		}
		rep.MetadataPassed++
	}
	return rep, nil
}

func (s *stores) migrate(ctx context.Context) (*MigrateResult, error) {
	if err := s.layout.VerifyVersion(); err != nil {
		return nil, err
	}
	return &MigrateResult{Status: MigrateCurrent, FromVersion: store.FormatVersion, ToVersion: store.FormatVersion}, nil
}

var _ = bytes.NewReader
