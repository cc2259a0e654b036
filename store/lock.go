package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// LockMode selects a shared (reader) or exclusive (writer) store lock.
type LockMode int

// Lock modes.
const (
	Shared LockMode = iota
	Exclusive
)

func (m LockMode) String() string {
	if m == Exclusive {
		return "exclusive"
	}
	return "shared"
}

// lockRetry is how often a blocking Lock polls while it waits.
const lockRetry = 20 * time.Millisecond

// Lock is a held store lock: flock(2) on <root>/store/.lock, the file the original
// locks (it stays empty, as there). An exclusive holder also writes who it is to
// <root>/store/.lock.holder so that a refused caller can say who is in the way.
type Lock struct {
	f      *flock.Flock
	mode   LockMode
	holder string
}

type holderNote struct {
	PID     int    `json:"pid"`
	Command string `json:"command"`
	Mode    string `json:"mode"`
	Since   string `json:"since"`
}

func (l Layout) holderFile() string { return l.LockFile() + ".holder" }

func (l Layout) newFlock() (*flock.Flock, error) {
	if err := l.mkdir(l.StoreDir()); err != nil {
		return nil, wrap("store lock", err)
	}
	return flock.New(l.LockFile(), flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(filePerm)), nil
}

// Lock takes the store lock, waiting until it is free or ctx is done.
func (l Layout) Lock(ctx context.Context, mode LockMode) (*Lock, error) {
	f, err := l.newFlock()
	if err != nil {
		return nil, err
	}
	try := f.TryRLockContext
	if mode == Exclusive {
		try = f.TryLockContext
	}
	ok, err := try(ctx, lockRetry)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("waiting for the store lock %s (held by %s): %w", l.LockFile(), l.describeHolder(), ctxErr)
		}
		return nil, wrap("store lock", err)
	}
	if !ok {
		return nil, wrap("store lock", errors.New("lock not acquired"))
	}
	return l.held(f, mode), nil
}

// TryLock takes the store lock without waiting. When someone else holds it, the error
// is a *LockedError (ErrLocked) naming the holder when known. Other failures (no
// permission, no lock support) are reported as themselves, not as "held".
func (l Layout) TryLock(mode LockMode) (*Lock, error) {
	f, err := l.newFlock()
	if err != nil {
		return nil, err
	}
	var ok bool
	if mode == Exclusive {
		ok, err = f.TryLock()
	} else {
		ok, err = f.TryRLock()
	}
	if err != nil {
		return nil, wrap("store lock", err)
	}
	if !ok {
		return nil, &LockedError{Path: l.LockFile(), Holder: l.describeHolder()}
	}
	return l.held(f, mode), nil
}

func (l Layout) held(f *flock.Flock, mode LockMode) *Lock {
	lk := &Lock{f: f, mode: mode}
	if mode == Exclusive {
		note := holderNote{PID: os.Getpid(), Command: commandLine(), Mode: mode.String(), Since: FormatTime(time.Now())}
		// Informational only: a plain write, no fsync on the lock path.
		if b, err := json.Marshal(note); err == nil && os.WriteFile(l.holderFile(), b, filePerm) == nil {
			lk.holder = l.holderFile()
		}
	}
	return lk
}

// Mode is the mode the lock is held in.
func (lk *Lock) Mode() LockMode { return lk.mode }

// Unlock releases the lock (and removes the holder note it wrote).
func (lk *Lock) Unlock() error {
	if lk.holder != "" {
		_ = os.Remove(lk.holder)
		lk.holder = ""
	}
	return wrap("store unlock", lk.f.Unlock())
}

// describeHolder reads the holder note, ignoring a stale one (its process is gone).
func (l Layout) describeHolder() string {
	b, err := os.ReadFile(l.holderFile())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "another process (no holder note: a reader, or the original karapace)"
		}
		return "another process"
	}
	var n holderNote
	if json.Unmarshal(b, &n) != nil || n.PID <= 0 {
		return "another process"
	}
	if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(n.PID))); err != nil {
		return "another process (stale holder note for pid " + strconv.Itoa(n.PID) + ")"
	}
	return fmt.Sprintf("pid %d (%s), %s since %s", n.PID, n.Command, n.Mode, n.Since)
}

func commandLine() string {
	b, err := os.ReadFile("/proc/self/cmdline")
	if err != nil {
		return filepath.Base(os.Args[0])
	}
	s := strings.TrimRight(strings.ReplaceAll(string(b), "\x00", " "), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
