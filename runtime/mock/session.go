package mock

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
)

// A session record is the file <env>/sessions/<pid> holding "<pid> <start time>", the
// start time being field 22 of /proc/<pid>/stat, so that a recycled pid is never taken
// for a live session.

func sessionsDir(envDir string) string { return filepath.Join(envDir, "sessions") }

func recordSession(envDir string, pid int) (string, error) {
	start, err := procStart(pid)
	if err != nil {
		return "", fmt.Errorf("mock: session %d: %w", pid, err)
	}
	dir := sessionsDir(envDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("mock: %w", err)
	}
	p := filepath.Join(dir, strconv.Itoa(pid))
	if err := writeAtomic(p, fmt.Appendf(nil, "%d %d", pid, start)); err != nil {
		return "", fmt.Errorf("mock: %w", err)
	}
	return p, nil
}

// writeAtomic writes through a dot-named temp file and a rename, so a reader never sees
// a half-written record (and never drops one as garbage).
func writeAtomic(p string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// procStart returns the start time of a process in clock ticks since boot.
func procStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces or parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// liveSessions returns the pids of the sessions whose process still runs, and removes
// the records of the others.
func liveSessions(envDir string) ([]int, error) {
	dir := sessionsDir(envDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("mock: %w", err)
	}
	var pids []int
	for _, ent := range ents {
		if strings.HasPrefix(ent.Name(), ".") {
			continue
		}
		p := filepath.Join(dir, ent.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var pid int
		var start uint64
		if _, err := fmt.Sscanf(string(b), "%d %d", &pid, &start); err != nil || pid <= 0 || strconv.Itoa(pid) != ent.Name() {
			_ = os.Remove(p)
			continue
		}
		if now, err := procStart(pid); err != nil || now != start || zombie(pid) {
			_ = os.Remove(p)
			continue
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids, nil
}

// zombie reports whether pid has exited but not been reaped yet.
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && (f[0] == "Z" || f[0] == "X")
}

// Status reports the live sessions recorded under the environment.
func (b *Backend) Status(ctx context.Context, spec *runtime.Spec) (runtime.Status, error) {
	pids, err := liveSessions(spec.EnvDir)
	if err != nil {
		return runtime.Status{}, err
	}
	return runtime.Status{EnvID: spec.EnvID, Running: len(pids) > 0, PIDs: pids}, nil
}

// Stop sends SIGTERM to every live session, waits up to grace for them to end, then
// sends SIGKILL to those left.
func (b *Backend) Stop(ctx context.Context, spec *runtime.Spec, grace time.Duration) error {
	pids, err := liveSessions(spec.EnvDir)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("%w: mock stop: SIGTERM to %d: %v", runtime.ErrExecFailed, pid, err)
		}
	}
	deadline := time.Now().Add(grace)
	for {
		left, err := liveSessions(spec.EnvDir)
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			for _, pid := range left {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
