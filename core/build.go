package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// loadProject parses and normalizes a manifest file and resolves its relative mount
// host paths against the manifest's directory (schema.Normalized.ResolveMounts), so the
// identity covers the directories it names. It returns the resolved manifest, the
// manifest as written and the manifest's absolute directory.
func loadProject(path string) (n, written *schema.Normalized, dir string, err error) {
	if written, err = loadManifest(path); err != nil {
		return nil, nil, "", err
	}
	if dir, err = filepath.Abs(filepath.Dir(path)); err != nil {
		return nil, nil, "", classify(ErrManifest, err)
	}
	return written.ResolveMounts(dir), written, dir, nil
}

// loadManifest parses and normalizes a manifest file.
func loadManifest(path string) (*schema.Normalized, error) {
	m, err := schema.LoadManifest(path)
	if err != nil {
		return nil, classify(ErrManifest, err)
	}
	n, err := m.Normalize()
	if err != nil {
		return nil, classify(ErrManifest, err)
	}
	return n, nil
}

// lockPath is the lock file next to a manifest.
func lockPath(manifestPath string) string {
	return filepath.Join(filepath.Dir(manifestPath), schema.LockFileName)
}

// Init records a manifest without building it: the environment appears as Defined under
// the manifest's preliminary id. A lock file next to the manifest is written only when
// there is none or it is itself an unresolved placeholder from an earlier Init: a real
// lock is never overwritten (fix of spec 5.2), so `build --locked` keeps working.
func (e *Engine) Init(ctx context.Context, manifestPath string) (*BuildResult, error) {
	n, _, _, err := loadProject(manifestPath)
	if err != nil {
		return nil, err
	}
	id := n.PreliminaryID()
	res := &BuildResult{EnvID: id, ShortID: id.Short(), LockPath: lockPath(manifestPath), Lock: schema.NewLock(n, schema.UnresolvedResolution(n))}
	err = e.withLock(ctx, "init", func() error {
		if err := e.layout.Initialize(ctx); err != nil {
			return classify(ErrStore, err)
		}
		m, err := e.st.metaGet(ctx, id)
		switch {
		case err == nil:
			res.Name = m.DisplayName()
		case errors.Is(err, store.ErrNotFound):
			mh, err := e.st.putObject(ctx, n.CanonicalJSON())
			if err != nil {
				return classify(ErrStore, err)
			}
			now := e.st.timestamp()
			m := &Env{
				EnvID: id, ShortID: id.Short(), State: Defined, ManifestHash: mh.String(),
				DependencyLayers: []string{}, CreatedAt: now, UpdatedAt: now, RefCount: 1,
			}
			if err := e.st.metaPut(ctx, m); err != nil {
				return classify(ErrStore, err)
			}
		default:
			return classify(ErrStore, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if old, err := schema.ReadLock(res.LockPath); err == nil && old.BaseImageDigest != schema.UnresolvedResolution(n).BaseImageDigest {
		e.log.Info("keeping the existing lock file", "path", res.LockPath)
		return res, nil
	}
	if err := res.Lock.WriteFile(res.LockPath); err != nil {
		return nil, classify(ErrLockFile, err)
	}
	return res, nil
}

// Build resolves the manifest with its backend, builds the environment, captures its
// base layer and records it as Built; unless opts.Locked it writes karapace.lock next to
// the manifest. Building over an existing environment with the same id keeps its name,
// creation time, writable layer and base layer (so its snapshots stay valid); a failed
// build leaves an existing environment as it was and removes only what the build
// created.
func (e *Engine) Build(ctx context.Context, manifestPath string, opts BuildOptions) (*BuildResult, error) {
	return e.build(ctx, manifestPath, opts, false)
}

// build is Build; rename lets opts.Name rename an environment that already has another
// name (Rebuild's --name), which a plain build refuses.
func (e *Engine) build(ctx context.Context, manifestPath string, opts BuildOptions, rename bool) (*BuildResult, error) {
	n, written, manifestDir, err := loadProject(manifestPath)
	if err != nil {
		return nil, err
	}
	lp := lockPath(manifestPath)
	var locked, prev *schema.Lock
	if opts.Locked {
		if locked, err = schema.ReadLock(lp); err != nil {
			return nil, classify(ErrLockFile, err)
		}
		if _, err := locked.VerifyIntegrity(); err != nil {
			return nil, classify(ErrLockFile, err)
		}
		if locked.HasRelativeMounts() {
			// A lock of the original's (or ours before mounts were resolved) hashed
			// the mounts as written: build them so, and its env id holds.
			n = written
		}
		if err := locked.VerifyManifestIntent(n); err != nil {
			return nil, classify(ErrLockFile, err)
		}
	} else if l, err := schema.ReadLock(lp); err == nil {
		prev = l // the environment this project had, whose name a changed id carries over
	}
	if opts.Offline && len(n.SystemPackages)+len(n.GUIApps) > 0 {
		return nil, classify(ErrRuntime, withMsg(runtime.ErrOffline, "offline mode: cannot resolve system packages"))
	}
	if opts.RequirePinnedImage {
		if err := n.RequirePinned(); err != nil {
			return nil, classify(ErrManifest, err)
		}
	}
	if len(n.Mounts) > 0 {
		host := sandbox.HostFromOS()
		for _, m := range n.Mounts {
			if _, err := sandbox.CheckMount(m, manifestDir, host); err != nil {
				return nil, classify(ErrRuntime, err)
			}
		}
	}
	if opts.Name != "" && !validName(opts.Name) {
		return nil, classify(ErrStore, e.st.checkName(opts.Name))
	}
	b, err := e.backend(n.RuntimeBackend)
	if err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = func(string) {}
	}
	res := &BuildResult{LockPath: lp}
	if _, err := os.Stat(e.layout.StoreDir()); errors.Is(err, fs.ErrNotExist) {
		// The image cache lives in the store: make the store (private) before it.
		if err := e.withLock(ctx, "build", func() error { return classify(ErrStore, e.layout.Initialize(ctx)) }); err != nil {
			return nil, err
		}
	}
	// Resolution, installation and capture run without the store lock; the lock is held
	// only to claim the environment and to commit it (docs/engine.md, "Builds and the
	// store lock").
	prelim := n.PreliminaryID()
	spec := &runtime.Spec{
		EnvID: prelim, StoreRoot: e.layout.Root(), EnvDir: e.layout.EnvPath(prelim),
		Manifest: *n, ManifestDir: manifestDir, Offline: opts.Offline, Progress: opts.Progress,
		Transfer: opts.Transfer,
	}
	progress("resolving packages")
	spec.Manifest.SystemPackages = resolveNames(n, locked)
	resolution, err := b.Resolve(ctx, spec)
	if err != nil {
		return nil, classify(ErrRuntime, err)
	}
	lock := schema.NewLock(n, resolution)
	id := lock.EnvID
	if locked != nil && locked.EnvID != id {
		return nil, classify(ErrLockFile, schema.LockedIDDrift(locked.EnvID, id))
	}
	res.EnvID, res.ShortID, res.Lock = id, id.Short(), lock
	envDir := e.layout.EnvPath(id)
	claim, created, old, err := e.claimBuild(ctx, id, e.freeName(ctx, opts.Name, prev))
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Undo what this build made, still under its claim (recovery would do it
		// if we died here).
		if created {
			// Let the backend make its scratch deletable (overlay work dirs) first.
			if derr := b.Destroy(context.WithoutCancel(ctx), spec); derr != nil {
				e.log.Warn("backend cleanup after a failed build", "err", derr)
			}
			if rerr := e.layout.RemoveTree(envDir); rerr != nil {
				e.log.Warn("remove the failed build's directory; recovery will retry", "err", rerr)
			}
		}
		_ = os.Remove(claim)
	}()
	spec.EnvID, spec.EnvDir = id, envDir
	// GUI apps are installed as packages too (see withApps).
	spec.Packages, spec.Manifest.SystemPackages = withApps(lock.ResolvedPackages, n.SystemPackages, n.GUIApps)
	progress("building environment")
	if err := b.Build(ctx, spec); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, classify(ErrRuntime, err)
	}
	var base schema.Digest
	if old == nil || old.BaseLayer == "" {
		progress("capturing base layer")
		if base, err = e.st.captureBase(ctx, e.layout.UpperDir(id)); err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, classify(ErrStore, err)
		}
	}
	err = e.withLock(ctx, "build", func() error {
		// The record as it is now: a rename or a destroy may have run meanwhile (not a
		// session, a freeze or a destroy of this environment: they wait for the claim).
		cur, err := e.st.metaGet(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("existing metadata unreadable; the build replaces it", "env", id.Short(), "err", err)
		}
		if err != nil {
			cur = nil
		}
		name, from, err := e.buildName(ctx, opts.Name, rename, id, cur, prev, manifestDir)
		if err != nil {
			return classify(ErrStore, err)
		}
		mh, err := e.st.putObject(ctx, n.CanonicalJSON())
		if err != nil {
			return classify(ErrStore, err)
		}
		now := e.st.timestamp()
		m := &Env{
			EnvID: id, ShortID: id.Short(), State: Built, ManifestHash: mh.String(),
			DependencyLayers: []string{}, CreatedAt: now, UpdatedAt: now, RefCount: 1,
		}
		if cur != nil && cur.BaseLayer != "" {
			// Same id, same lock: keep the base layer (and so the snapshots) and the
			// record's identity.
			m.BaseLayer, m.Name, m.CreatedAt, m.RefCount = cur.BaseLayer, cur.Name, cur.CreatedAt, max(cur.RefCount, 1)
			m.DependencyLayers, m.PolicyLayer = cur.DependencyLayers, cur.PolicyLayer
		} else {
			// The capture ran without the lock, so a gc may have taken its layer or
			// object since (they were nobody's yet): then capture again, locked.
			if base.IsZero() || !e.st.layerComplete(ctx, base) {
				progress("capturing base layer")
				if base, err = e.st.captureBase(ctx, e.layout.UpperDir(id)); err != nil {
					return classify(ErrStore, err)
				}
			}
			m.BaseLayer = base.String()
			if cur != nil {
				m.Name, m.CreatedAt = cur.Name, cur.CreatedAt
			}
		}
		if name != "" {
			m.Name = &name
		}
		if locked == nil {
			if err := lock.WriteFile(lp); err != nil {
				return classify(ErrLockFile, err)
			}
		}
		if err := writeManifestDir(envDir, manifestDir); err != nil {
			return classify(ErrStore, err)
		}
		// The commit is logged: killed before the entry is committed, it is rolled
		// back (a new environment's record and directory go). Its first entry also
		// makes the WAL's reserve (store.WAL.Begin).
		var steps []walStep
		if cur == nil {
			steps = append(steps, removeFile(e.st.metaPath(id)))
			if created {
				steps = append(steps, removeDir(envDir))
			}
		}
		op, err := e.st.walBegin(ctx, "Build", id.String(), steps...)
		if err != nil {
			return classify(ErrStore, err)
		}
		if from != nil {
			// The name moves: off the environment this project built before, then
			// onto this one (names are unique, so never on both).
			if err := e.st.envs.SetName(ctx, from.EnvID, ""); err != nil {
				return e.abort(op, classify(ErrStore, err))
			}
		}
		// The commit point: with its record written the environment is built.
		if err := e.st.metaPut(ctx, m); err != nil {
			if from != nil {
				_ = e.st.envs.SetName(context.WithoutCancel(ctx), from.EnvID, name)
			}
			return e.abort(op, classify(ErrStore, err))
		}
		if err := e.st.walCommit(ctx, op); err != nil {
			return classify(ErrStore, err) // the entry is left: recovery rolls the build back
		}
		committed = true
		if from != nil {
			res.NameFrom = from.EnvID
		}
		if err := os.Remove(claim); err != nil && !errors.Is(err, fs.ErrNotExist) {
			e.log.Warn("remove the build claim", "err", err)
		}
		res.Name = m.DisplayName()
		// The Defined record of an earlier Init is superseded (fix of spec 5.2).
		if prelim != id {
			if p, err := e.st.metaGet(ctx, prelim); err == nil && p.State == Defined {
				if err := e.st.metaRemove(ctx, prelim); err != nil {
					e.log.Warn("remove superseded init record", "env", prelim.Short(), "err", err)
				}
			}
		}
		// Still under the lock, so that no destroy of this environment runs between
		// the build and its exports.
		res.Exported = e.exportApps(ctx, id, n.GUIApps)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

// claimBuild is a build's first locked step: it waits for another build of id to end
// (withEnvLock), refuses a running environment, records the build claim and makes the
// environment's directory, reporting whether it made it and the record that was
// there. An existing record is touched (updated_at), so that the native exec fast path,
// which runs only on a record byte for byte as its plan saw it, falls back to the full
// path and waits for the build as every other session does.
func (e *Engine) claimBuild(ctx context.Context, id schema.EnvID, name string) (claim string, created bool, old *Env, err error) {
	envDir := e.layout.EnvPath(id)
	err = e.withEnvLock(ctx, "build", id, func() error {
		if err := e.layout.Initialize(ctx); err != nil {
			return classify(ErrStore, err)
		}
		if name != "" {
			if err := e.st.checkNameFree(ctx, name, id); err != nil {
				return classify(ErrStore, err)
			}
		}
		m, err := e.st.metaGet(ctx, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			e.log.Warn("existing metadata unreadable; the build replaces it", "env", id.Short(), "err", err)
		}
		if err == nil {
			old = m
		}
		if live, err := liveClaims(envDir); err != nil {
			return classify(ErrStore, err)
		} else if live > 0 {
			return &TransitionError{From: "running", To: "cannot rebuild a running environment; stop it first"}
		}
		if claim, err = addBuildClaim(e.buildsDir(), id); err != nil {
			return classify(ErrStore, err)
		}
		// Fix of spec 5.7: only a directory this build creates is ever removed.
		if _, err := os.Lstat(envDir); errors.Is(err, fs.ErrNotExist) {
			created = true
		}
		if err := os.MkdirAll(envDir, 0o700); err != nil {
			_ = os.Remove(claim)
			return classify(ErrStore, err)
		}
		if rec, err := e.st.metaGetRecorded(ctx, id); err == nil {
			rec.UpdatedAt = e.st.timestamp()
			if err := e.st.metaPut(ctx, rec); err != nil {
				_ = os.Remove(claim)
				return classify(ErrStore, err)
			}
		}
		return nil
	})
	return claim, created, old, err
}

// Rebuild builds the manifest, then destroys the environment it replaces (the one the
// lock file, or else the manifest's preliminary id, points at) when the id changed. The
// new environment inherits the old one's name unless opts.Name is set. The old
// environment's metadata is removed only when its destroy succeeded (fix of spec 5.8);
// a failed destroy is logged and the old environment stays.
//
// Before anything is built, unless opts.Force, it refuses with a *DiscardError when
// the environment it would replace holds what a rebuild cannot make again: snapshots,
// changes made in its writable layer since its build, exported apps the manifest does
// not list. (Build keeps such an environment and moves its name to the new one.)
func (e *Engine) Rebuild(ctx context.Context, manifestPath string, opts BuildOptions) (*BuildResult, error) {
	n, _, _, err := loadProject(manifestPath)
	if err != nil {
		return nil, err
	}
	var olds []*Env
	if l, err := schema.ReadLock(lockPath(manifestPath)); err == nil {
		if m, err := e.st.metaGet(ctx, l.EnvID); err == nil {
			olds = append(olds, m)
		}
	}
	if len(olds) == 0 {
		if m, err := e.st.metaGet(ctx, n.PreliminaryID()); err == nil {
			olds = append(olds, m)
		}
	}
	if !opts.Force {
		var lost []Discard
		for _, o := range olds {
			d, err := e.discards(ctx, o, n.GUIApps)
			if err != nil {
				return nil, err
			}
			if d.Any() {
				lost = append(lost, d)
			}
		}
		if len(lost) > 0 {
			return nil, &DiscardError{Envs: lost}
		}
	}
	name := opts.Name
	bopts := opts
	for _, o := range olds {
		if name == "" {
			name = o.DisplayName()
		}
		if o.DisplayName() == opts.Name {
			bopts.Name = "" // the old environment still holds it; moved below
		}
	}
	res, err := e.build(ctx, manifestPath, bopts, true)
	if err != nil {
		return nil, err
	}
	for _, o := range olds {
		if o.EnvID == res.EnvID {
			continue
		}
		if err := e.Destroy(ctx, o.EnvID); err != nil {
			e.log.Warn("failed to destroy old environment during rebuild", "env", o.EnvID.Short(), "err", err)
			continue
		}
		res.Replaced = append(res.Replaced, o.EnvID)
	}
	if len(res.Replaced) > 0 {
		// A launcher is named after its app, so the replaced environment's held the
		// name until its destroy removed it: export again.
		res.Exported = e.exportApps(ctx, res.EnvID, n.GUIApps)
	}
	if name != "" && res.Name != name {
		if err := e.Rename(ctx, res.EnvID, name); err != nil {
			if opts.Name != "" {
				return res, err
			}
			e.log.Warn("could not carry the name over", "name", name, "err", err)
		} else {
			res.Name = name
		}
	}
	return res, nil
}

// discards is what destroying m would drop that a build of the manifest (whose gui
// apps are apps) does not make again.
func (e *Engine) discards(ctx context.Context, m *Env, apps []string) (Discard, error) {
	d := Discard{EnvID: m.EnvID, Name: m.DisplayName()}
	snaps, err := e.Snapshots(ctx, m.EnvID)
	if err != nil {
		return d, err
	}
	d.Snapshots = len(snaps)
	exported, err := e.Apps(ctx, m.EnvID)
	if err != nil {
		return d, err
	}
	for _, x := range exported {
		if !slices.Contains(apps, x.Name) {
			d.Apps = append(d.Apps, x.Name)
		}
	}
	d.Changed, err = e.upperChanged(ctx, m)
	return d, err
}

// upperChanged reports whether m's writable layer differs from the base layer its
// build captured: the packed upper directory hashes to another tar.
func (e *Engine) upperChanged(ctx context.Context, m *Env) (bool, error) {
	upper := e.layout.UpperDir(m.EnvID)
	if m.BaseLayer == "" {
		return false, nil // a Defined record: nothing built yet
	}
	k, err := schema.ParseDigest(m.BaseLayer)
	if err != nil {
		return false, classify(ErrStore, err)
	}
	base, err := e.st.layerGet(ctx, k)
	if err != nil {
		return false, classify(ErrStore, err)
	}
	if _, err := os.Lstat(upper); errors.Is(err, fs.ErrNotExist) {
		return base.TarHash != schema.Sum(nil), nil
	}
	h := schema.Hasher()
	if err := store.Pack(ctx, upper, h, e.log); err != nil {
		return false, classify(ErrStore, fmt.Errorf("compare the writable layer of %s with its build: %w", m.ShortID, err))
	}
	return schema.DigestOf(h) != base.TarHash, nil
}

// manifestDirFile, in an environment's directory, records the directory of the manifest
// it was last built from. Relative mount host paths resolve against it in every session
// (not against wherever the session is started); an environment without it (pulled, or
// built by an older version) resolves them against the current directory.
const manifestDirFile = "manifest-dir"

func writeManifestDir(envDir, dir string) error {
	if dir == "" {
		return nil
	}
	tmp := filepath.Join(envDir, "."+manifestDirFile+".tmp")
	if err := os.WriteFile(tmp, []byte(dir+"\n"), 0o644); err != nil {
		return fmt.Errorf("record the manifest directory: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(envDir, manifestDirFile)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("record the manifest directory: %w", err)
	}
	return nil
}

// readManifestDir returns the recorded manifest directory, or "".
func readManifestDir(envDir string) string {
	b, err := os.ReadFile(filepath.Join(envDir, manifestDirFile))
	if err != nil {
		return ""
	}
	dir := strings.TrimSuffix(string(b), "\n")
	if !filepath.IsAbs(dir) || strings.ContainsAny(dir, "\n\x00") {
		return ""
	}
	return dir
}
