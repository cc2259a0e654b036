package store_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func newWAL(t *testing.T) (*store.WAL, store.Layout) {
	l := newLayout(t)
	return store.NewWAL(l, fixedClock, nil), l
}

func walEntries(t *testing.T, l store.Layout) []string {
	t.Helper()
	des, _ := os.ReadDir(l.WALDir())
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestWALEntryFormatMatchesOriginal(t *testing.T) {
	op := store.Op{OpID: "20250101120000123-ad487491", Kind: store.OpGC, EnvID: "gc", Timestamp: "2025-01-01T12:00:00.123456789+00:00", RollbackSteps: []store.Step{}}
	b, err := schema.MarshalPretty(op)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n  \"op_id\": \"20250101120000123-ad487491\",\n  \"kind\": \"Gc\",\n  \"env_id\": \"gc\",\n  \"timestamp\": \"2025-01-01T12:00:00.123456789+00:00\",\n  \"rollback_steps\": []\n}"
	if string(b) != want {
		t.Fatalf("entry:\n%s\nwant:\n%s", b, want)
	}
	op.RollbackSteps = []store.Step{store.RemoveDirStep("/path"), store.ResetStateStep(schema.SumString("e"), store.StateBuilt), store.RenameStep("/a", "/b")}
	b, _ = schema.MarshalPretty(op)
	golden(t, "wal-entry.json", b)
	if !strings.Contains(string(b), "{\n      \"RemoveDir\": \"/path\"\n    }") {
		t.Fatalf("RemoveDir step layout:\n%s", b)
	}
	back, err := store.DecodeOp(b)
	if err != nil || len(back.RollbackSteps) != 3 || back.RollbackSteps[1].TargetState != "Built" || back.RollbackSteps[2].To != "/b" {
		t.Fatalf("decode: %+v %v", back, err)
	}
}

func TestWALBeginCommitAndUniqueIDs(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	seen := map[string]bool{}
	var ids []string
	for range 50 {
		id, err := w.Begin(ctx, store.OpBuild, "same-env")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(id, "20250101120000123-"+schema.SumString("same-env").String()[:8]+"-") {
			t.Fatalf("op id %s", id)
		}
		if seen[id] {
			t.Fatalf("duplicate op id %s within one millisecond", id)
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if n := len(walEntries(t, l)); n != 50 {
		t.Fatalf("%d entries, want 50", n)
	}
	for _, id := range ids {
		if err := w.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(walEntries(t, l)); n != 0 {
		t.Fatalf("%d entries after commits", n)
	}
	if err := w.Commit(ctx, ids[0]); err != nil {
		t.Fatalf("commit twice: %v", err)
	}
	if err := w.Commit(ctx, "../../version"); !errors.Is(err, store.ErrInvalidID) {
		t.Fatalf("commit with a path as op id: %v", err)
	}
}

func TestWALRecoverRollsBackInReverse(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	envDir := filepath.Join(l.EnvDir(), schema.SumString("e").String())
	writeFile(t, filepath.Join(envDir, "upper", "f"), "x", 0o644)
	stray := filepath.Join(l.LayersDir(), "partial")
	writeFile(t, stray, "x", 0o644)
	id, _ := w.Begin(ctx, store.OpBuild, "e")
	if err := w.AddStep(ctx, id, store.RemoveDirStep(envDir)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddStep(ctx, id, store.RemoveFileStep(stray)); err != nil {
		t.Fatal(err)
	}
	rep, err := w.Recover(ctx)
	if err != nil || len(rep.RolledBack) != 1 || len(rep.Failed) != 0 {
		t.Fatalf("Recover = %+v, %v", rep, err)
	}
	for _, p := range []string{envDir, stray} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s survived recovery", p)
		}
	}
	if n := len(walEntries(t, l)); n != 0 {
		t.Fatalf("%d entries left", n)
	}
	if rep, _ := w.Recover(ctx); len(rep.RolledBack) != 0 {
		t.Fatal("second recovery found work")
	}
	if _, err := os.Stat(l.VersionFile()); err != nil {
		t.Fatal("recovery touched the version file")
	}
}

func TestWALRecoverResetState(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	envs := store.NewEnvs(l, fixedClock, nil)
	m := sampleMeta("running")
	m.State = store.StateRunning
	_ = envs.Put(ctx, m)
	id, _ := w.Begin(ctx, store.OpEnter, m.EnvID.String())
	_ = w.AddStep(ctx, id, store.ResetStateStep(m.EnvID, store.StateBuilt))
	if _, err := w.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := envs.Get(ctx, m.EnvID)
	if err != nil || got.State != store.StateBuilt {
		t.Fatalf("state after recovery: %v %v", got.State, err)
	}
}

func TestWALRefusesPathsOutsideTheStore(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	writeFile(t, victim, "precious", 0o644)
	id, _ := w.Begin(ctx, store.OpBuild, "e")
	for _, s := range []store.Step{store.RemoveFileStep(victim), store.RemoveDirStep(l.Root()), store.RemoveDirStep(l.Root() + "/env/../../x"), store.RemoveDirStep("relative")} {
		if err := w.AddStep(ctx, id, s); !errors.Is(err, store.ErrUnsafePath) {
			t.Errorf("AddStep(%+v) = %v", s, err)
		}
	}
	// A hand-written (or hostile) entry naming outside paths: refused at recovery.
	entry := `{"op_id":"20250101000000000-00000000","kind":"Build","env_id":"e","timestamp":"t","rollback_steps":[{"RemoveFile":"` + victim + `"},{"RemoveDir":"` + outside + `"}]}`
	_ = os.WriteFile(filepath.Join(l.WALDir(), "20250101000000000-00000000.json"), []byte(entry), 0o644)
	// A symlinked directory inside the store must not redirect a delete either.
	if err := os.Symlink(outside, filepath.Join(l.EnvDir(), "link")); err != nil {
		t.Fatal(err)
	}
	entry2 := `{"op_id":"20250101000000001-00000000","kind":"Build","env_id":"e","timestamp":"t","rollback_steps":[{"RemoveFile":"` + filepath.Join(l.EnvDir(), "link", "victim") + `"}]}`
	_ = os.WriteFile(filepath.Join(l.WALDir(), "20250101000000001-00000000.json"), []byte(entry2), 0o644)
	if _, err := w.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatal("recovery deleted a file outside the store")
	}
}

func TestWALCorruptEntriesReportedAndRemoved(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	_ = os.MkdirAll(l.WALDir(), 0o755)
	bad := filepath.Join(l.WALDir(), "garbage.json")
	_ = os.WriteFile(bad, []byte("{not json"), 0o644)
	_ = os.WriteFile(filepath.Join(l.WALDir(), ".tmpABCDEF"), []byte("{not json"), 0o644)
	good, _ := w.Begin(ctx, store.OpCommit, "e")
	rep, err := w.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.RolledBack) != 1 || rep.RolledBack[0].OpID != good || len(rep.Corrupt) != 1 || rep.Corrupt[0].Name != "garbage.json" {
		t.Fatalf("Recover = %+v", rep)
	}
	if _, err := os.Lstat(bad); err == nil {
		t.Fatal("corrupt entry not removed")
	}
	if _, err := os.Lstat(filepath.Join(l.WALDir(), ".tmpABCDEF")); err != nil {
		t.Fatal("temp file treated as an entry")
	}
}

func TestWALSwapDirRollback(t *testing.T) {
	ctx := context.Background()
	w, l := newWAL(t)
	env := filepath.Join(l.EnvDir(), schema.SumString("e").String())
	upper := filepath.Join(env, "upper")
	writeFile(t, filepath.Join(upper, "old.txt"), "old", 0o644)
	stage := func() string {
		s := filepath.Join(l.StagingDir(), "restore-e")
		writeFile(t, filepath.Join(s, "new.txt"), "new", 0o644)
		return s
	}
	// Crash after the swap, before commit: recovery brings the old upper back.
	id, _ := w.Begin(ctx, store.OpRestore, "e")
	s := stage()
	_ = w.AddStep(ctx, id, store.RemoveDirStep(s))
	if _, err := w.SwapDir(ctx, id, s, upper); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "new.txt")); err != nil {
		t.Fatal("swap did not install the staged dir")
	}
	if _, err := w.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(upper, "old.txt")); string(b) != "old" {
		t.Fatal("rollback did not restore the old upper")
	}
	if _, err := os.Stat(filepath.Join(upper, "new.txt")); err == nil {
		t.Fatal("rollback kept the new content")
	}
	// Completed swap: commit, then drop the aside copy.
	id, _ = w.Begin(ctx, store.OpRestore, "e")
	s = stage()
	old, err := w.SwapDir(ctx, id, s, upper)
	if err != nil {
		t.Fatal(err)
	}
	_ = w.Commit(ctx, id)
	_ = os.RemoveAll(old)
	if rep, _ := w.Recover(ctx); len(rep.RolledBack) != 0 {
		t.Fatal("committed swap rolled back")
	}
	if _, err := os.Stat(filepath.Join(upper, "new.txt")); err != nil {
		t.Fatal("committed swap lost")
	}
}

func TestWALRecoverNoDuplicateObjectsAfterPartialBuild(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	id := schema.SumString("e")
	op, _ := s.WAL.Begin(ctx, store.OpBuild, id.String())
	_ = s.WAL.AddStep(ctx, op, store.RemoveDirStep(s.Layout.EnvPath(id)))
	d1, _ := s.Objects.PutBytes(ctx, []byte("base tar"))
	writeFile(t, filepath.Join(s.Layout.UpperDir(id), "f"), "x", 0o644)
	// crash here; recovery, then the build runs again
	if _, err := s.WAL.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	d2, _ := s.Objects.PutBytes(ctx, []byte("base tar"))
	ds, _ := s.Objects.List(ctx)
	if d1 != d2 || len(ds) != 1 {
		t.Fatalf("objects after rebuild: %v", ds)
	}
	if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}
