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
	log     *slog.Logger
	now     func() time.Time
}

func newStores(l store.Layout, log *slog.Logger, now func() time.Time) *stores {
	return &stores{layout: l, objects: store.NewObjects(l), log: log, now: now}
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
	return s.layerPut(ctx, &layerManifest{
		Hash: tar.String(), Kind: "Base", ObjectRefs: []string{tar.String()}, ReadOnly: true, TarHash: tar.String(),
	})
}

// --- layers (interim) ---

type layerManifest struct {
	Hash       string   `json:"hash"`
	Kind       string   `json:"kind"`
	Parent     *string  `json:"parent"`
	ObjectRefs []string `json:"object_refs"`
	ReadOnly   bool     `json:"read_only"`
	TarHash    string   `json:"tar_hash"`
}

func (s *stores) layerPath(k schema.Digest) string {
	return filepath.Join(s.layout.LayersDir(), k.String())
}

func (s *stores) layerKey(l *layerManifest) (schema.Digest, error) {
	b, err := schema.MarshalPretty(l)
	if err != nil {
		return schema.Digest{}, err
	}
	return schema.Sum(b), nil
}

func (s *stores) layerExists(ctx context.Context, k schema.Digest) bool {
	_, err := os.Lstat(s.layerPath(k))
	return err == nil
}

func (s *stores) layerPut(ctx context.Context, l *layerManifest) (schema.Digest, error) {
	b, err := schema.MarshalPretty(l)
	if err != nil {
		return schema.Digest{}, err
	}
	k := schema.Sum(b)
	if s.layerExists(ctx, k) {
		return k, nil
	}
	return k, atomicWrite(s.layerPath(k), b)
}

func (s *stores) layerGet(ctx context.Context, k schema.Digest) (*layerManifest, error) {
	b, err := os.ReadFile(s.layerPath(k))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("layer %s: %w", k, store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if schema.Sum(b) != k {
		return nil, fmt.Errorf("layer %s: %w", k, store.ErrIntegrity)
	}
	var l layerManifest
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("layer %s: %w", k, store.ErrCorrupt)
	}
	return &l, nil
}

func (s *stores) layerList(ctx context.Context) ([]schema.Digest, error) {
	return listDigests(s.layout.LayersDir())
}

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

// --- metadata (interim) ---

func (s *stores) metaPath(id schema.EnvID) string {
	return filepath.Join(s.layout.MetadataDir(), id.String())
}

func metaChecksum(m *Env) (string, error) {
	c := *m
	c.Checksum = ""
	if c.DependencyLayers == nil {
		c.DependencyLayers = []string{}
	}
	b, err := schema.MarshalPretty(&c)
	if err != nil {
		return "", err
	}
	return schema.Sum(b).String(), nil
}

func (s *stores) metaGet(ctx context.Context, id schema.EnvID) (*Env, error) {
	b, err := os.ReadFile(s.metaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metadata %s: %w", id.Short(), store.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	var m Env
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("metadata %s: %w: %v", id.Short(), store.ErrCorrupt, err)
	}
	if m.Checksum != "" {
		sum, err := metaChecksum(&m)
		if err != nil {
			return nil, err
		}
		if sum != m.Checksum {
			return nil, fmt.Errorf("metadata %s: %w", id.Short(), store.ErrIntegrity)
		}
	}
	return &m, nil
}

func (s *stores) metaPut(ctx context.Context, m *Env) error {
	if m.DependencyLayers == nil {
		m.DependencyLayers = []string{}
	}
	sum, err := metaChecksum(m)
	if err != nil {
		return err
	}
	m.Checksum = sum
	b, err := schema.MarshalPretty(m)
	if err != nil {
		return err
	}
	return atomicWrite(s.metaPath(m.EnvID), b)
}

func (s *stores) metaRemove(ctx context.Context, id schema.EnvID) error {
	err := os.Remove(s.metaPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (s *stores) metaList(ctx context.Context) ([]Env, error) {
	ids, err := listDigests(s.layout.MetadataDir())
	if err != nil {
		return nil, err
	}
	out := []Env{}
	for _, id := range ids {
		m, err := s.metaGet(ctx, id)
		if err != nil {
			s.log.Warn("skipping unreadable metadata", "env", id.Short(), "err", err)
			continue
		}
		out = append(out, *m)
	}
	return out, nil
}

func (s *stores) setState(ctx context.Context, m *Env, st State) error {
	m.State = st
	m.UpdatedAt = s.timestamp()
	return s.metaPut(ctx, m)
}

func (s *stores) checkName(name string) error {
	if len(name) == 0 || len(name) > 64 {
		return fmt.Errorf("%w: environment name must be 1-64 characters", store.ErrInvalidName)
	}
	if !validName(name) {
		return fmt.Errorf("%w: environment name must match [a-zA-Z0-9_-]", store.ErrInvalidName)
	}
	return nil
}

func (s *stores) checkNameFree(ctx context.Context, name string, id schema.EnvID) error {
	envs, err := s.metaList(ctx)
	if err != nil {
		return err
	}
	for _, e := range envs {
		if e.Name != nil && *e.Name == name && e.EnvID != id {
			return &store.NameConflictError{Name: name, ExistingEnvID: e.ShortID}
		}
	}
	return nil
}

func (s *stores) setName(ctx context.Context, id schema.EnvID, name string) error {
	if err := s.checkName(name); err != nil {
		return err
	}
	if err := s.checkNameFree(ctx, name, id); err != nil {
		return err
	}
	m, err := s.metaGet(ctx, id)
	if err != nil {
		return err
	}
	m.Name = &name
	m.UpdatedAt = s.timestamp()
	return s.metaPut(ctx, m)
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

func (s *stores) walBegin(ctx context.Context, kind, envID string) (string, error) {
	if err := os.MkdirAll(s.layout.WALDir(), 0o755); err != nil {
		return "", err
	}
	now := s.now().UTC()
	op := fmt.Sprintf("%s-%s-%d-%d", now.Format("20060102150405.000000000"), schema.SumString(envID).String()[:8], os.Getpid(), now.UnixNano())
	e := walEntry{OpID: op, Kind: kind, EnvID: envID, Timestamp: store.FormatTime(now), RollbackSteps: []json.RawMessage{}}
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
		if l, err := s.layerGet(ctx, k); err == nil && l.Kind == "Snapshot" && l.Parent != nil && liveLayers[*l.Parent] {
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
				liveObjects[o] = true
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
	ids, err := listDigests(s.layout.MetadataDir())
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		rep.MetadataChecked++
		if _, err := s.metaGet(ctx, id); err != nil {
			rep.Failed = append(rep.Failed, VerifyFailure{Hash: id.String(), Reason: err.Error()})
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
