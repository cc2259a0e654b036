package core

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Recovery on open. New recovers whenever it can take the store lock at once, for
// every caller, read-only ones included, so that `list` after a killed build shows the
// store as it is once the dead operation is rolled back, not as the operation left it.
// A full recovery (Engine.recover) looks into every environment directory, which at
// 10,000 environments costs more than the listing itself; New does it only when
// something may need it:
//
//   - a WAL entry was rolled back (an operation died), or
//   - metadata/ or env/ changed since the last recovery, as the stamp <store>/.settled
//     tells: every metadata write is a rename in metadata/ and every environment
//     directory comes and goes in env/, so the directory mtimes change with each.
//
// Every holder of the exclusive lock spoils the stamp before its work and writes it
// again when it is done, so a store that only we wrote is "settled" at the next open
// and costs three stats, and one whose writer died midway (leaving, say, a restore's
// upper.swap-old, which no WAL entry names once the restore committed) is not. The original
// writes no stamp: whatever it did (its sessions write a Running record and an
// env/<id>/.running marker) changes metadata/, so the next open settles it. A deep
// recovery, run when the stamp does not match, also reads every record, to find
// Running records the original left with a dead or no session (see settleSessions).

// settledFile is the stamp of the last complete recovery.
const settledFile = ".settled"

func (e *Engine) settledPath() string { return filepath.Join(e.layout.StoreDir(), settledFile) }

// storeStamp is what the stamp records: the modification times of metadata/ and env/.
func (e *Engine) storeStamp() string {
	var parts [2]string
	for i, dir := range []string{e.layout.MetadataDir(), e.layout.EnvDir()} {
		fi, err := os.Stat(dir)
		if err != nil {
			parts[i] = "-"
			continue
		}
		parts[i] = strconv.FormatInt(fi.ModTime().UnixNano(), 10)
	}
	return "1 " + parts[0] + " " + parts[1] + "\n"
}

// settled reports whether nothing changed in metadata/ and env/ since the last
// complete recovery, and no build died since.
func (e *Engine) settled() bool {
	b, err := os.ReadFile(e.settledPath())
	// A killed build's directory may predate the stamp (a lock holder wrote it while
	// the build ran), so a dead build claim always asks for a full recovery.
	return err == nil && string(b) == e.storeStamp() && !deadBuilds(e.buildsDir())
}

// markSettled writes the stamp. The caller holds the exclusive lock and the store is
// recovered. The stamp is a cache: a lost or torn one only costs a deep recovery, so
// it is written without fsync.
func (e *Engine) markSettled() {
	p := e.settledPath()
	tmp := filepath.Join(filepath.Dir(p), "."+settledFile+".tmp"+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, []byte(e.storeStamp()), 0o600); err != nil {
		_ = os.Remove(tmp)
		e.log.Debug("write the recovery stamp", "err", err)
		return
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		e.log.Debug("write the recovery stamp", "err", err)
	}
}

// unsettle spoils the stamp: the caller holds the exclusive lock and is about to
// change the store. It overwrites the stamp's first byte in place rather than
// removing it, so that it frees no space: on a full disk the operation must fail as
// it would without the stamp, not get one block further.
func (e *Engine) unsettle() {
	f, err := os.OpenFile(e.settledPath(), os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err == nil {
		_, err = f.WriteAt([]byte("0"), 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		// A stamp we cannot spoil must not outlive this operation.
		if rerr := os.Remove(e.settledPath()); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			e.log.Warn("remove the recovery stamp", "err", rerr)
		}
	}
}

// recoverOnOpen is New's recovery; the caller holds the exclusive lock.
func (e *Engine) recoverOnOpen(ctx context.Context) error {
	n, err := e.st.walRecover(ctx)
	if err != nil {
		return err
	}
	if n == 0 && e.settled() {
		return nil
	}
	if n > 0 {
		e.log.Info("rolled back interrupted operations", "count", n)
	}
	if err := e.recover(ctx, !e.settled()); err != nil {
		return err
	}
	e.markSettled()
	return nil
}

// gateFormat refuses a store of another format version (unless opts.AnyFormat): a
// gc or destroy on a newer store could remove what the newer format needs, and a
// reader could show it wrong. A store without a version file is new or not made yet.
func (e *Engine) gateFormat() error {
	if _, err := os.Stat(e.layout.VersionFile()); err != nil {
		return nil
	}
	if err := e.layout.VerifyVersion(); err != nil {
		if e.opts.AnyFormat {
			return err
		}
		return classify(ErrStore, fmt.Errorf("%w (run 'karapace migrate')", err))
	}
	return nil
}

// settleSessions settles an environment whose sessions all died: it drops stale
// session claims and the original's stale .running marker (its pid dead, or none in
// it), and sets a Running record back to Built when no session is live. Without deep
// it looks only where our sessions leave traces (claims/); deep also reads the marker
// and the record, for stores the original wrote. The caller holds the exclusive lock.
func (e *Engine) settleSessions(ctx context.Context, id schema.EnvID, envDir string, deep bool) error {
	_, cerr := os.Lstat(claimsDir(envDir))
	hasClaims := cerr == nil
	if !hasClaims && !deep {
		return nil
	}
	live := 0
	if hasClaims {
		n, err := liveClaims(envDir)
		if err != nil {
			return nil // unreadable claims: leave the environment as it is
		}
		live = n
	}
	if deep {
		alive, err := e.settleMarker(id)
		if err != nil {
			return err
		}
		if alive {
			live++
		}
	}
	if live > 0 {
		return nil
	}
	m, err := e.st.metaGetRecorded(ctx, id)
	if err != nil || m.State != Running {
		return nil
	}
	e.log.Info("environment has no live session any more", "env", id.Short())
	return e.st.setState(ctx, m, Built)
}

// settleMarker removes the environment's .running marker (written by the original's
// sessions) unless it names a live process, and reports whether it does.
func (e *Engine) settleMarker(id schema.EnvID) (bool, error) {
	p := e.layout.RunningMarker(id)
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.Mode().IsRegular() {
		if b, err := os.ReadFile(p); err == nil {
			if pid, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 31); err == nil && pid > 0 {
				if _, err := procStart(int(pid)); err == nil {
					return true, nil
				}
			}
		}
	}
	e.log.Info("removing a stale .running marker", "env", id.Short())
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	return false, nil
}

// corruptRecord reports whether err, from reading a record that is there, says the
// record itself is bad (it does not parse or verify, or it is no regular file), not
// that it could not be read now.
func corruptRecord(err error) bool {
	return !errors.Is(err, ErrNotFound) && (errors.Is(err, store.ErrIntegrity) || errors.Is(err, store.ErrCorrupt))
}
