package namespace

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
)

// KeeperFile is the record of an environment's keeper (fx_keeper in fastexec.h): the
// process that keeps the namespaces, and so the mounted root, of a fast-path exec
// session alive for the next ones. It holds "<pid> <start> <token> <ident>".
const KeeperFile = "keeper"

// Keeper is a live keeper.
type Keeper struct {
	PID   int
	Start uint64
}

// FindKeeper returns the environment's live keeper, or ok false when there is none (a
// record of a dead process is removed).
func FindKeeper(envDir string) (k Keeper, ok bool, err error) {
	path := filepath.Join(envDir, KeeperFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Keeper{}, false, nil
	}
	if err != nil {
		return Keeper{}, false, err
	}
	f := strings.Fields(string(data))
	if len(f) == 4 {
		k.PID, _ = strconv.Atoi(f[0])
		k.Start, _ = strconv.ParseUint(f[1], 10, 64)
	}
	if k.PID <= 0 {
		_ = os.Remove(path) // malformed: nobody can join it
		return Keeper{}, false, nil
	}
	// A zombie (a keeper killed by a signal, not yet reaped) is gone too.
	if state, now, err := procStat(k.PID); err != nil || now != k.Start || state == "Z" {
		removeIfSame(path, data)
		return Keeper{}, false, nil
	}
	return k, true, nil
}

// removeIfSame removes path if it still holds data (a new keeper may have replaced it).
func removeIfSame(path string, data []byte) {
	if now, err := os.ReadFile(path); err == nil && string(now) == string(data) {
		_ = os.Remove(path)
	}
}

// ReleaseKeeper ends the environment's keeper, if any, and waits until it is gone, so
// the environment's root is no longer mounted anywhere but in live sessions. Sessions
// that joined it keep running: namespaces live as long as a process is in them.
func ReleaseKeeper(ctx context.Context, envDir string) error {
	k, ok, err := FindKeeper(envDir)
	if err != nil || !ok {
		return err
	}
	// A zombie has left its namespaces (and unmounted what was its alone) already.
	gone := func() bool {
		state, start, err := procStat(k.PID)
		return err != nil || state == "Z" || start != k.Start
	}
	if err := syscall.Kill(k.PID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%w: stop the keeper %d: %v", runtime.ErrExecFailed, k.PID, err)
	}
	for i := 0; ; i++ {
		if gone() {
			// A keeper that leaves removes its record; one killed leaves it behind.
			if data, err := os.ReadFile(filepath.Join(envDir, KeeperFile)); err == nil &&
				strings.HasPrefix(string(data), fmt.Sprintf("%d %d ", k.PID, k.Start)) {
				removeIfSame(filepath.Join(envDir, KeeperFile), data)
			}
			return nil
		}
		if i == 150 { // 3 s: the keeper answers SIGTERM within a poll round
			_ = syscall.Kill(k.PID, syscall.SIGKILL)
		}
		if i > 400 {
			return fmt.Errorf("%w: the keeper %d of %s did not exit", runtime.ErrExecFailed, k.PID, envDir)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Release implements runtime.Releaser: it ends the environment's keeper.
func (b *Backend) Release(ctx context.Context, spec *runtime.Spec) error {
	return ReleaseKeeper(ctx, spec.EnvDir)
}
