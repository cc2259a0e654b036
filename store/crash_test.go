package store_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// childEnv makes the test binary act as a store writer that the parent kills -9.
const childEnv = "KARAPACE_STORE_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv("KARAPACE_STORE_TEST_ROOT")))
	}
	os.Exit(m.Run())
}

// slowReader yields zeros forever, a chunk at a time, announcing when it has started.
type slowReader struct {
	announced bool
	out       io.Writer
}

func (r *slowReader) Read(p []byte) (int, error) {
	if !r.announced {
		fmt.Fprintln(r.out, "writing")
		r.announced = true
	}
	time.Sleep(time.Millisecond)
	n := min(len(p), 64<<10)
	clear(p[:n])
	return n, nil
}

func runChild(mode, root string) int {
	ctx := context.Background()
	s, err := store.Open(ctx, root, store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if mode == "removetree" {
		if err := store.RemoveTree(root); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	}
	id := schema.SumString("crash-env")
	switch mode {
	case "lock":
		// Hold the exclusive lock until killed.
		if _, err := s.Layout.Lock(ctx, store.Exclusive); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		fmt.Println("writing")
		select {}
	case "build":
		// A build: WAL entry, env dir, then an endless object write that gets killed.
		op, err := s.WAL.Begin(ctx, store.OpBuild, id.String())
		if err == nil {
			err = s.WAL.AddStep(ctx, op, store.RemoveDirStep(s.Layout.EnvPath(id)))
		}
		if err == nil {
			err = os.MkdirAll(s.Layout.UpperDir(id), 0o755)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		_, err = s.Objects.Put(ctx, &slowReader{out: os.Stdout})
		fmt.Fprintln(os.Stderr, "Put returned:", err)
		return 2
	case "restore":
		// Restores in a loop: each stages a generation and swaps it in.
		upper := s.Layout.UpperDir(id)
		for gen := 0; ; gen++ {
			op, err := s.WAL.Begin(ctx, store.OpRestore, id.String())
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			staging := filepath.Join(s.Layout.StagingDir(), "restore-"+id.String())
			_ = s.WAL.AddStep(ctx, op, store.RemoveDirStep(staging))
			_ = os.RemoveAll(staging)
			for i := range 20 {
				_ = os.MkdirAll(staging, 0o755)
				_ = os.WriteFile(filepath.Join(staging, "f"+strconv.Itoa(i)), []byte(strconv.Itoa(gen)), 0o644)
			}
			old, err := s.WAL.SwapDir(ctx, op, staging, upper)
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			if err := s.WAL.Commit(ctx, op); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 2
			}
			_ = os.RemoveAll(old)
			if gen == 3 {
				fmt.Println("writing")
			}
		}
	}
	return 2
}

func startChild(t *testing.T, mode, root string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "KARAPACE_STORE_TEST_ROOT="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "writing" {
		t.Fatalf("child did not start writing: %q %v", line, err)
	}
	return cmd
}

func killChild(t *testing.T, cmd *exec.Cmd, after time.Duration) {
	t.Helper()
	time.Sleep(after)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
}

// recoverAndVerify is what the engine does at start-up after a crash.
func recoverAndVerify(t *testing.T, root string) *store.Store {
	t.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, root, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WAL.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GC(ctx, store.GCOptions{LeftoverAge: time.Nanosecond}); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("verify after crash recovery: %+v %v", rep, err)
	}
	for _, dir := range []string{s.Layout.ObjectsDir(), s.Layout.WALDir(), s.Layout.StagingDir()} {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			if strings.HasPrefix(de.Name(), ".tmp") || dir != s.Layout.ObjectsDir() {
				t.Errorf("left after recovery: %s/%s", dir, de.Name())
			}
		}
	}
	return s
}

func TestKill9MidObjectWriteThenRecover(t *testing.T) {
	root := t.TempDir()
	cmd := startChild(t, "build", root)
	killChild(t, cmd, 100*time.Millisecond)
	l := store.NewLayout(root)
	tmp, _ := filepath.Glob(filepath.Join(l.ObjectsDir(), ".tmp*"))
	if len(tmp) != 1 {
		t.Fatalf("expected the killed write's temp file, found %v", tmp)
	}
	s := recoverAndVerify(t, root)
	if ds, _ := s.Objects.List(context.Background()); len(ds) != 0 {
		t.Fatalf("a half-written object became visible: %v", ds)
	}
	if _, err := os.Stat(s.Layout.EnvPath(schema.SumString("crash-env"))); err == nil {
		t.Fatal("WAL recovery did not remove the half-built env dir")
	}
}

func TestKill9MidRestoreLoopThenRecover(t *testing.T) {
	for round := range 3 {
		root := t.TempDir()
		cmd := startChild(t, "restore", root)
		killChild(t, cmd, time.Duration(20+round*37)*time.Millisecond)
		s := recoverAndVerify(t, root)
		upper := s.Layout.UpperDir(schema.SumString("crash-env"))
		des, err := os.ReadDir(upper)
		if err != nil || len(des) != 20 {
			t.Fatalf("round %d: upper has %d entries after recovery (%v): a restore was torn", round, len(des), err)
		}
		gens := map[string]bool{}
		for _, de := range des {
			b, _ := os.ReadFile(filepath.Join(upper, de.Name()))
			gens[string(b)] = true
		}
		if len(gens) != 1 {
			t.Fatalf("round %d: upper mixes generations %v", round, gens)
		}
		if _, err := os.Stat(upper + ".swap-old"); err == nil {
			t.Fatalf("round %d: swap leftover survived", round)
		}
	}
}

func TestLockHeldByAnotherProcess(t *testing.T) {
	root := t.TempDir()
	cmd := startChild(t, "lock", root)
	l := store.NewLayout(root)
	_, err := l.TryLock(store.Shared)
	var le *store.LockedError
	if !errors.As(err, &le) || !strings.Contains(le.Holder, "pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("TryLock against another process = %v", err)
	}
	killChild(t, cmd, 0)
	// The kernel drops the lock with the process; the stale note is harmless.
	lk, err := l.TryLock(store.Exclusive)
	if err != nil {
		t.Fatalf("lock of a killed holder not released: %v", err)
	}
	_ = lk.Unlock()
}

// TestRemoveTreeAsUnprivilegedOwner: an owner without CAP_DAC_OVERRIDE can delete a tree
// holding read-only directories (as GC and WAL recovery must, rootless).
func TestRemoveTreeAsUnprivilegedOwner(t *testing.T) {
	requireReal(t, os.Geteuid() == 0, "switching to an unprivileged user needs root")
	base := t.TempDir()
	for p := base; p != "/" && p != os.TempDir(); p = filepath.Dir(p) {
		_ = os.Chmod(p, 0o755) // let the unprivileged child reach the tree
	}
	tree := filepath.Join(base, "env")
	writeFile(t, filepath.Join(tree, "ro", "deep", "file"), "x", 0o444)
	if err := os.Symlink("/etc/hostname", filepath.Join(tree, "ro", "link")); err != nil {
		t.Fatal(err)
	}
	_ = filepath.WalkDir(tree, func(p string, d os.DirEntry, err error) error {
		if err == nil {
			_ = os.Lchown(p, 65534, 65534)
		}
		return nil
	})
	_ = os.Chmod(base, 0o777)
	_ = os.Chmod(filepath.Join(tree, "ro", "deep"), 0o555)
	_ = os.Chmod(filepath.Join(tree, "ro"), 0o555)
	// The test binary's build dir is private to root: run a copy the child can reach.
	exe, _ := os.Executable()
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	exeCopy := filepath.Join(base, "store.test")
	if err := os.WriteFile(exeCopy, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exeCopy, "-test.run=^$")
	cmd.Dir = base
	cmd.Env = append(os.Environ(), childEnv+"=removetree", "KARAPACE_STORE_TEST_ROOT="+tree)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("RemoveTree as nobody: %v\n%s", err, out)
	}
	if _, err := os.Lstat(tree); err == nil {
		t.Fatal("tree still there")
	}
	if _, err := os.Stat("/etc/hostname"); err != nil {
		t.Fatal("RemoveTree followed a symlink")
	}
}
