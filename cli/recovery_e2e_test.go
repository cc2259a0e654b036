package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// walEntries lists the store's WAL entries.
func (w *world) walEntries() []string {
	w.t.Helper()
	ents, _ := filepath.Glob(filepath.Join(w.store, "store", "wal", "*.json"))
	return ents
}

// listIDs runs `list --json` and returns the ids it shows.
func (w *world) listIDs() []string {
	w.t.Helper()
	var envs []core.Env
	w.jsonOK(&envs, "list")
	var ids []string
	for _, e := range envs {
		ids = append(ids, e.EnvID.String())
	}
	return ids
}

// begin writes the WAL entry an operation of kind has when it is killed.
func begin(t *testing.T, wal *store.WAL, kind store.OpKind, envID string, steps ...store.Step) {
	t.Helper()
	ctx := context.Background()
	op, err := wal.Begin(ctx, kind, envID)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range steps {
		if err := wal.AddStep(ctx, op, s); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCLIListSettlesInterruptedOperations: what a killed build, commit, restore,
// destroy or gc leaves (its WAL entry and half-made files) is settled by the next
// read-only command, `list`, when no one holds the store lock.
func TestCLIListSettlesInterruptedOperations(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	keep := w.buildNamed("karapace.toml", "keep")
	l := store.NewLayout(w.store)
	wal := store.NewWAL(l, nil, nil)
	keepID := schema.MustParseDigest(keep)

	t.Run("build", func(t *testing.T) {
		w.manifest("other.toml", "rolling", "git")
		w.env = append(w.env, "KARAPACE_MOCK_BUILD_DELAY=30s")
		c := w.cmd("build", "other.toml")
		w.env = w.env[:len(w.env)-1]
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer c.Process.Kill()
		// Killed in its backend step (the mock's delay), which runs without the store
		// lock: its build claim and its new environment directory are there.
		waitFor(t, 20*time.Second, "the build to make its directory", func() bool {
			envs, _ := os.ReadDir(l.EnvDir())
			claims, _ := os.ReadDir(filepath.Join(l.StoreDir(), "builds"))
			return len(claims) > 0 && len(envs) >= 2
		})
		_ = c.Process.Signal(syscall.SIGKILL)
		_ = c.Wait()
		if ids := w.listIDs(); len(ids) != 1 || ids[0] != keep {
			t.Errorf("list after a killed build: %v", ids)
		}
		if left := w.walEntries(); len(left) != 0 {
			t.Errorf("WAL entries left after list: %v", left)
		}
		if envs, _ := os.ReadDir(l.EnvDir()); len(envs) != 1 || envs[0].Name() != keep {
			t.Errorf("environment directories after list: %v", envs)
		}
	})

	t.Run("commit", func(t *testing.T) {
		layer := filepath.Join(l.LayersDir(), schema.SumString("half-made snapshot").String())
		begin(t, wal, store.OpCommit, keep, store.RemoveFileStep(layer))
		if err := os.WriteFile(layer, []byte("{half"), 0o644); err != nil {
			t.Fatal(err)
		}
		w.listIDs()
		if _, err := os.Lstat(layer); err == nil {
			t.Error("the half-made snapshot layer survived list")
		}
		if left := w.walEntries(); len(left) != 0 {
			t.Errorf("WAL entries left after list: %v", left)
		}
	})

	t.Run("restore", func(t *testing.T) {
		upper := l.UpperDir(keepID)
		if err := os.WriteFile(filepath.Join(upper, "mine"), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
		staging := filepath.Join(l.StagingDir(), "restore-"+keep)
		if err := os.MkdirAll(staging, 0o700); err != nil {
			t.Fatal(err)
		}
		// Killed inside WAL.SwapDir: upper moved aside, the staged one not yet in.
		begin(t, wal, store.OpRestore, keep, store.RemoveDirStep(staging), store.RenameStep(upper+".swap-old", upper))
		if err := os.Rename(upper, upper+".swap-old"); err != nil {
			t.Fatal(err)
		}
		w.listIDs()
		if b, err := os.ReadFile(filepath.Join(upper, "mine")); err != nil || string(b) != "old" {
			t.Errorf("upper not put back: %q %v", b, err)
		}
		for _, p := range []string{staging, upper + ".swap-old"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s survived list", p)
			}
		}
		if left := w.walEntries(); len(left) != 0 {
			t.Errorf("WAL entries left after list: %v", left)
		}
	})

	t.Run("destroy", func(t *testing.T) {
		w.manifest("doomed.toml", "rolling", "make")
		doomed := w.buildNamed("doomed.toml", "doomed")
		id := schema.MustParseDigest(doomed)
		// Killed after the metadata went and midway through the directory.
		begin(t, wal, store.OpDestroy, doomed, store.RemoveFileStep(filepath.Join(l.MetadataDir(), doomed)), store.RemoveDirStep(l.EnvPath(id)))
		if err := os.Remove(filepath.Join(l.MetadataDir(), doomed)); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(l.UpperDir(id)); err != nil {
			t.Fatal(err)
		}
		if ids := w.listIDs(); len(ids) != 1 || ids[0] != keep {
			t.Errorf("list after a killed destroy: %v", ids)
		}
		if _, err := os.Lstat(l.EnvPath(id)); err == nil {
			t.Error("the half-destroyed directory survived list")
		}
		if left := w.walEntries(); len(left) != 0 {
			t.Errorf("WAL entries left after list: %v", left)
		}
	})

	t.Run("gc", func(t *testing.T) {
		// Killed between removing an orphan's metadata and its directory (a
		// directory without metadata is what recovery removes), the entry left.
		orphan := schema.SumString("gc orphan")
		if err := os.MkdirAll(l.UpperDir(orphan), 0o755); err != nil {
			t.Fatal(err)
		}
		begin(t, wal, store.OpGC, "gc")
		w.listIDs()
		if _, err := os.Lstat(l.EnvPath(orphan)); err == nil {
			t.Error("the orphan's directory survived list")
		}
		if left := w.walEntries(); len(left) != 0 {
			t.Errorf("WAL entries left after list: %v", left)
		}
	})

	var v verifyResult
	if r := w.jsonOK(&v, "verify-store"); v.Failed != 0 {
		t.Errorf("verify-store after the settled crashes: %s", r)
	}
}

// TestCLIOddMetadataEntries: a record that is a symlink is reported, not followed,
// and stops GC, which would otherwise delete the environment's manifest object; so
// does a symlinked layer.
func TestCLIOddMetadataEntries(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	id := w.buildNamed("karapace.toml", "linked")
	rec := filepath.Join(w.store, "store", "metadata", id)
	b, err := os.ReadFile(rec)
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := filepath.Join(t.TempDir(), "record")
	if err := os.WriteFile(elsewhere, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, rec); err != nil {
		t.Fatal(err)
	}
	objects, _ := filepath.Glob(filepath.Join(w.store, "store", "objects", "*"))
	w.verifyFails(id, "metadata read error", "not a regular file (symlink)")
	w.fail(3, []string{"stops GC", id}, "gc")
	after, _ := filepath.Glob(filepath.Join(w.store, "store", "objects", "*"))
	if len(after) != len(objects) {
		t.Errorf("gc removed objects: %d before, %d after", len(objects), len(after))
	}
	w.fail(3, []string{"not a regular file"}, "inspect", id)

	// A layer that is a symlink (to a copy of itself) is reported and stops GC too.
	if err := os.Remove(rec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rec, b, 0o644); err != nil {
		t.Fatal(err)
	}
	layers, _ := filepath.Glob(filepath.Join(w.store, "store", "layers", "*"))
	if len(layers) == 0 {
		t.Fatal("no layers")
	}
	lb, _ := os.ReadFile(layers[0])
	copyOf := filepath.Join(t.TempDir(), "layer")
	_ = os.WriteFile(copyOf, lb, 0o644)
	_ = os.Remove(layers[0])
	if err := os.Symlink(copyOf, layers[0]); err != nil {
		t.Fatal(err)
	}
	w.verifyFails(filepath.Base(layers[0]), "layer read error", "not a regular file (symlink)")
	w.fail(3, []string{"stops GC"}, "gc")
}

// verifyFails runs verify-store, which must exit 3 and name each of want.
func (w *world) verifyFails(want ...string) {
	w.t.Helper()
	r := w.run("verify-store")
	if r.code != 3 {
		w.t.Errorf("verify-store: %s", r)
	}
	for _, s := range want {
		if !strings.Contains(r.stdout, s) {
			w.t.Errorf("verify-store does not say %q: %s", s, r)
		}
	}
}

// TestCLICorruptRecordByFullID: a corrupt record named by its full id is a store
// error (exit 3), not "no environment matching" (exit 1), and destroy removes it.
func TestCLICorruptRecordByFullID(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	id := w.buildNamed("karapace.toml", "broken")
	rec := filepath.Join(w.store, "store", "metadata", id)
	b, _ := os.ReadFile(rec)
	if err := os.WriteFile(rec, regexp.MustCompile(`"ref_count": \d+`).ReplaceAll(b, []byte(`"ref_count": 77`)), 0o644); err != nil {
		t.Fatal(err)
	}
	if nb, _ := os.ReadFile(rec); bytes.Equal(nb, b) {
		t.Fatal("the record was not tampered with")
	}
	w.fail(3, []string{"integrity check failed for metadata"}, "inspect", id)
	w.fail(1, []string{"no environment matching 'broken'"}, "inspect", "broken")
	w.ok("destroy", id)
	for _, p := range []string{rec, filepath.Join(w.store, "env", id)} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s survived destroy", p)
		}
	}
	w.fail(1, []string{"no environment matching"}, "inspect", id)
	var v verifyResult
	if r := w.jsonOK(&v, "verify-store"); v.Failed != 0 {
		t.Errorf("verify-store after destroy: %s", r)
	}
}

// TestCLISettlesOriginalSessions: a store the original wrote, with a session that
// died (a Running record and a .running marker naming a dead pid) and one that died
// before it wrote its marker, is settled by the next command: both records say Built
// and the marker is gone.
func TestCLISettlesOriginalSessions(t *testing.T) {
	ctx := context.Background()
	w := newWorld(t)
	w.manifest("a.toml", "rolling")
	w.manifest("b.toml", "rolling", "git")
	a := schema.MustParseDigest(w.buildNamed("a.toml", "a"))
	b := schema.MustParseDigest(w.buildNamed("b.toml", "b"))
	st := store.New(w.store, store.Options{})
	for _, id := range []schema.EnvID{a, b} {
		if err := st.Envs.UpdateState(ctx, id, store.StateRunning); err != nil {
			t.Fatal(err)
		}
	}
	marker := st.Layout.RunningMarker(a)
	// Above the kernel's largest pid (pid_max is at most 2^22): never a live process.
	if err := os.WriteFile(marker, []byte("4194305"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.listIDs()
	if _, err := os.Lstat(marker); err == nil {
		t.Error("the stale .running marker survived list")
	}
	for _, id := range []schema.EnvID{a, b} {
		m, err := st.Envs.Get(ctx, id)
		if err != nil || m.State != store.StateBuilt {
			t.Errorf("%s: recorded state %q (%v), want Built", id.Short(), m.State, err)
		}
	}
}
