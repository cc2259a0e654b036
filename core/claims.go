package core

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/karapace/karapace/schema"
)

// A session claim is the engine's own record of a live session: the file
// <env>/claims/<pid>.<n> holding "<pid> <start time>", written under the store lock
// (exclusive for the engine, shared for the native exec fast path) before the session
// starts and removed by its owner after it ends. The environment
// is Running while a claim of a live process exists. The start time (field 22 of
// /proc/<pid>/stat) keeps a recycled pid from passing for a live session, so a claim
// left by a killed process is recognised as stale and dropped by the next state change
// or recovery.

const claimsDirName = "claims"

// hasLiveClaim reports whether a live process holds a session claim in envDir. It only
// reads: stale claims are dropped under the lock, by liveClaims.
func hasLiveClaim(envDir string) bool {
	dir := claimsDir(envDir)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		if claimAlive(filepath.Join(dir, ent.Name()), ent.Name()) {
			return true
		}
	}
	return false
}

// liveState is the state a user sees: a Built environment is Running while a session
// of it is live. Sessions never write Running (so that an exec changes nothing in the
// store, which the native exec fast path relies on); a record that holds Running
// (written by an older version, or the original) reads as Built once its sessions are
// gone.
func liveState(recorded State, envDir string) State {
	if recorded != Built && recorded != Running {
		return recorded
	}
	if hasLiveClaim(envDir) {
		return Running
	}
	return Built
}

// claimSeq tells apart the claims of one process (several goroutines may run sessions).
var claimSeq atomic.Uint64

func claimsDir(envDir string) string { return filepath.Join(envDir, claimsDirName) }

// addClaim records a session of this process and returns the claim's path.
func addClaim(envDir string) (string, error) {
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return "", fmt.Errorf("record session: %w", err)
	}
	dir := claimsDir(envDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("record session: %w", err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%d.%d", pid, claimSeq.Add(1)))
	// Through a dot-named temp file and a rename: a reader never sees a half-written
	// claim, which it would drop as garbage.
	tmp := filepath.Join(dir, "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d", pid, start), 0o644); err != nil {
		return "", fmt.Errorf("record session: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("record session: %w", err)
	}
	return p, nil
}

// liveClaims counts the claims of live processes and removes the stale ones.
func liveClaims(envDir string) (int, error) {
	dir := claimsDir(envDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read sessions: %w", err)
	}
	n := 0
	for _, ent := range ents {
		p := filepath.Join(dir, ent.Name())
		if strings.HasPrefix(ent.Name(), ".") {
			// A temp file of addClaim: garbage once its writer is gone.
			pid, _, _ := strings.Cut(strings.TrimPrefix(ent.Name(), "."), ".")
			if n, err := strconv.Atoi(pid); err == nil && n > 0 {
				if _, err := procStart(n); err == nil {
					continue
				}
			}
			_ = os.Remove(p)
			continue
		}
		if claimAlive(p, ent.Name()) {
			n++
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, fmt.Errorf("drop stale session: %w", err)
		}
	}
	return n, nil
}

func claimAlive(p, name string) bool {
	b, err := os.ReadFile(p)
	if err != nil {
		return false
	}
	var pid int
	var start uint64
	if _, err := fmt.Sscanf(string(b), "%d %d", &pid, &start); err != nil || pid <= 0 {
		return false
	}
	if !strings.HasPrefix(name, strconv.Itoa(pid)+".") {
		return false
	}
	now, state, err := procInfo(pid)
	return err == nil && now == start && state != "Z" && state != "X"
}

// procStart returns the start time of a process in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	start, _, err := procInfo(pid)
	return start, err
}

// procInfo reads a process's state letter and start time from /proc/<pid>/stat.
func procInfo(pid int) (start uint64, state string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces or parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, "", fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	return start, f[0], err
}

// A build claim, <store>/builds/<env_id>.<pid>.<n> holding "<pid> <start time>" as a
// session claim does, marks a build in progress: a build runs its slow part (download,
// resolution, package installation, capture of the base layer) without the store lock
// and holds the lock only to claim the environment and to commit it (see docs/engine.md,
// "Builds and the store lock"). While a live build claims an environment, the
// operations that would change it wait (withEnvLock), recovery leaves its directory
// alone although it has no metadata yet, and the recovery stamp is not trusted once a
// claim's process is gone.

const buildsDirName = "builds"

func (e *Engine) buildsDir() string { return filepath.Join(e.layout.StoreDir(), buildsDirName) }

// addBuildClaim records a build of id by this process and returns the claim's path.
func addBuildClaim(dir string, id schema.EnvID) (string, error) {
	pid := os.Getpid()
	start, err := procStart(pid)
	if err != nil {
		return "", fmt.Errorf("record build: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("record build: %w", err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%s.%d.%d", id, pid, claimSeq.Add(1)))
	// The claim is written whole before the rename: a reader never sees a half claim.
	tmp := filepath.Join(dir, "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d", pid, start), 0o600); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("record build: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("record build: %w", err)
	}
	return p, nil
}

// buildClaim is one entry of the builds directory.
type buildClaim struct {
	id   schema.EnvID
	pid  int
	path string
	live bool
}

// readBuilds lists the build claims in dir (none when it does not exist). Temp files
// of addBuildClaim count as dead claims once their writer is gone.
func readBuilds(dir string) []buildClaim {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []buildClaim
	for _, ent := range ents {
		name := ent.Name()
		p := filepath.Join(dir, name)
		tmp := strings.HasPrefix(name, ".")
		hexID, rest, _ := strings.Cut(strings.TrimPrefix(name, "."), ".")
		id, err := schema.ParseEnvID(hexID)
		if err != nil {
			continue // not ours: left alone
		}
		pid, _, _ := strings.Cut(rest, ".")
		c := buildClaim{id: id, path: p}
		c.pid, _ = strconv.Atoi(pid)
		if tmp {
			_, perr := procStart(c.pid)
			c.live = c.pid > 0 && perr == nil
		} else {
			c.live = claimAlive(p, rest)
		}
		out = append(out, c)
	}
	return out
}

// liveBuild reports whether a live process builds id, and its pid.
func liveBuild(dir string, id schema.EnvID) (int, bool) {
	for _, c := range readBuilds(dir) {
		if c.live && c.id == id {
			return c.pid, true
		}
	}
	return 0, false
}

// deadBuilds reports whether a build claim outlived its process (a killed build).
func deadBuilds(dir string) bool {
	for _, c := range readBuilds(dir) {
		if !c.live {
			return true
		}
	}
	return false
}
