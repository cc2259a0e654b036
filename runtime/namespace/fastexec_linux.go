package namespace

import (
	"bytes"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
)

// The native exec fast path (fastexec.h, compiled into nsinit.c). `karapace exec REF --
// CMD...` is caught by a C constructor before the Go runtime starts. It reads the plan
// an earlier exec of the same environment left in <env>/fastexec, checks that nothing it
// was computed from has changed, and starts the sandbox itself: no Go start-up, no
// re-exec. Whatever it cannot vouch for, it leaves to the Go path, which then writes a
// fresh plan. The file holds, as NUL-terminated strings in this order:
//
//	"KPFX3"
//	uid gid                                  the caller the plan was made for
//	metapath meta(blob)                      valid only while the record is these bytes
//	name lockfile waldir claimsdir sessionsdir workdir
//	want rootmaps newgidmap newuidmap gidmap(list) uidmap(list)
//	envfacts: n, then n x (key present value)       the host variables Compute read
//	kindfacts: n, then n x (path kind)              answers of FS.Kind
//	linkfacts: n, then n x (path ok resolved)       answers of FS.EvalSymlinks
//	statfacts: n, then n x (path present ino size mtime_sec mtime_nsec)
//	cwd                                      "" unless relative mounts depend on it
//	allow(list) deny(list) fixed(list)       the variable policy and the plan's own vars
//	head(blob) ovlprefix needwork mounts(blob) dir   pieces of the launcher's plan
//	idpaths(list)                            the upper and lower directories and every
//	                                         bind source: the root a keeper holds is
//	                                         joined only while they are the same files
//	sum                                      FNV-1a 64 of all the bytes before it, in hex
//
// A blob is its length in decimal, NUL, then the bytes.
const fastMagic = "KPFX3"

// fastFacts is what a session plan was computed from, beyond its Inputs.
type fastFacts struct {
	fs  *sandbox.RecordingFS
	env map[string]string
	cwd string
}

// errNotFast says why a session's plan is not offered to the fast path (not an error
// of the session).
var errNotFast = errors.New("not eligible for the exec fast path")

// writeFastExec leaves the plan of an exec session for the fast path. It is a cache:
// any failure only means the next exec takes the full path.
func writeFastExec(spec *runtime.Spec, plan *sandbox.Plan, facts fastFacts, opts Options) error {
	fx := spec.FastExec
	if fx == nil {
		return errNotFast
	}
	target := filepath.Join(spec.EnvDir, runtime.FastExecFile)
	body, err := encodeFast(spec, plan, facts, opts)
	if err != nil {
		_ = os.Remove(target)
		return err
	}
	// An unchanged plan is not written again: the Go path runs it at every exec the fast
	// path declines.
	if old, err := os.ReadFile(target); err == nil && bytes.Equal(old, body) {
		return nil
	}
	return replaceFile(target, body, 0o600)
}

func encodeFast(spec *runtime.Spec, plan *sandbox.Plan, facts fastFacts, opts Options) ([]byte, error) {
	fx := spec.FastExec
	switch {
	case plan.TTY:
		return nil, fmt.Errorf("%w: a terminal session", errNotFast)
	case plan.Limits != (sandbox.Limits{}):
		return nil, fmt.Errorf("%w: resource limits (cgroups)", errNotFast)
	case opts.testSkipUserNS || opts.testSkipMntNS:
		return nil, fmt.Errorf("%w: test seams", errNotFast)
	}
	// The plan's variables are the host's allow-listed ones plus its own; the fast path
	// recomputes the first kind from its environment, so the two must not overlap.
	var fixed []string
	for _, kv := range plan.Env {
		k, v, _ := strings.Cut(kv, "=")
		if sandbox.EnvAllowed(k) {
			if hv, ok := facts.env[k]; !ok || hv != v {
				return nil, fmt.Errorf("%w: variable %s is set by the plan", errNotFast, k)
			}
			continue
		}
		fixed = append(fixed, kv)
	}
	fp, err := flatten(plan, "/", "/", opts)
	if err != nil {
		return nil, err
	}
	const probe = "/karapace-work"
	ovl, err := overlayOptions(plan.Root, probe)
	if err != nil {
		return nil, err
	}
	prefix, needWork := strings.CutSuffix(ovl, ",workdir="+probe)

	want := uint64(wantUserNS)
	uid, gid := os.Getuid(), os.Getgid()
	if selfMapping(plan.UIDMap, os.Geteuid()) && selfMapping(plan.GIDMap, os.Getegid()) {
		want |= wantSelfMap
	} else {
		want |= wantParent
	}
	var newuidmap, newgidmap string
	rootMaps := os.Geteuid() == 0
	if want&wantParent != 0 && !rootMaps {
		if newuidmap, err = exec.LookPath("newuidmap"); err != nil {
			return nil, fmt.Errorf("%w: no newuidmap", errNotFast)
		}
		if newgidmap, err = exec.LookPath("newgidmap"); err != nil {
			return nil, fmt.Errorf("%w: no newgidmap", errNotFast)
		}
	}
	mapList := func(m []sandbox.IDMap) []string {
		var out []string
		for _, e := range m {
			out = append(out, fmt.Sprintf("%d %d %d", e.ContainerID, e.HostID, e.Size))
		}
		return out
	}

	var w planWriter
	blob := func(b []byte) {
		w.num(uint64(len(b)))
		w.Write(b)
	}
	w.str(fastMagic)
	w.num(uint64(uid))
	w.num(uint64(gid))
	w.str(fx.MetaPath)
	blob(fx.Meta)
	w.str(fx.Name)
	w.str(fx.LockFile)
	w.str(fx.WALDir)
	w.str(fx.ClaimsDir)
	w.str(filepath.Join(spec.EnvDir, sessionsDir))
	w.str(plan.Root.Work)
	w.num(want)
	w.flag(rootMaps)
	w.str(newgidmap)
	w.str(newuidmap)
	w.list(mapList(plan.GIDMap))
	w.list(mapList(plan.UIDMap))

	keys := sandbox.HostEnvKeys()
	w.num(uint64(len(keys)))
	for _, k := range keys {
		v, ok := facts.env[k]
		w.str(k)
		w.flag(ok)
		w.str(v)
	}
	kinds := append([]sandbox.KindFact(nil), facts.fs.Kinds...)
	// The image rootfs must still be there (Compute itself does not look at it).
	for _, l := range plan.Root.Lower {
		kinds = append(kinds, sandbox.KindFact{Path: l, Kind: sandbox.OSFS{}.Kind(l)})
	}
	w.num(uint64(len(kinds)))
	for _, k := range kinds {
		w.str(k.Path)
		w.num(uint64(k.Kind))
	}
	w.num(uint64(len(facts.fs.Links)))
	for _, l := range facts.fs.Links {
		w.str(l.Path)
		w.flag(l.OK)
		w.str(l.Resolved)
	}
	// The id maps come from these files, and the user's name and home from the password
	// database when HOME or USER is unset.
	// The store's format version file too: a migration makes every plan stale.
	// And the binary itself: a plan made by another build of karapace may lack what
	// this one puts in plans (a security rule, a mount).
	stats := []string{"/etc/subuid", "/etc/subgid", filepath.Join(spec.StoreRoot, "store", "version"), "/proc/self/exe"}
	if facts.env["HOME"] == "" || facts.env["USER"] == "" {
		stats = append(stats, "/etc/passwd")
	}
	w.num(uint64(len(stats)))
	for _, p := range stats {
		var st syscall.Stat_t
		err := syscall.Stat(p, &st)
		w.str(p)
		w.flag(err == nil)
		w.num(st.Ino)
		w.num(uint64(st.Size))
		w.num(uint64(st.Mtim.Sec))
		w.num(uint64(st.Mtim.Nsec))
	}
	w.str(facts.cwd)
	w.list(sandbox.AllowedEnv())
	w.list(sandbox.DeniedEnv())
	w.list(fixed)

	var head, mounts planWriter
	fp.encodeHead(&head)
	fp.encodeMounts(&mounts)
	blob(head.Bytes())
	w.str(prefix)
	w.flag(needWork)
	blob(mounts.Bytes())
	w.str(fp.dir)
	idpaths := append([]string{plan.Root.Upper}, plan.Root.Lower...)
	for _, m := range fp.mounts {
		if m.bind {
			idpaths = append(idpaths, m.source)
		}
	}
	w.list(idpaths)
	// A trailer against accidental damage: FNV-1a 64 of everything before it.
	h := fnv.New64a()
	h.Write(w.Bytes())
	w.str(fmt.Sprintf("%016x", h.Sum64()))
	return w.Bytes(), nil
}
