package core

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// Child processes: the test binary re-executes itself with KARAPACE_CORE_CHILD set to a
// mode; TestMain runs that mode's endless loop instead of the tests. The parent kills it
// with SIGKILL midway and checks that recovery leaves a clean store (spec 4.3,
// tests/crash.rs; a Go process cannot fork, so it re-executes).
const childEnv = "KARAPACE_CORE_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv("KARAPACE_CORE_ROOT"), os.Getenv("KARAPACE_CORE_PROJ"), os.Getenv("KARAPACE_CORE_CYCLES")))
	}
	os.Exit(m.Run())
}

// childTB is the testing.TB the helpers get in a child process: the methods they call
// are defined here (a failure exits); the embedded nil TB is never reached.
type childTB struct{ testing.TB }

func (childTB) Helper()                      {}
func (childTB) Fatal(args ...any)            { fmt.Fprintln(os.Stderr, args...); os.Exit(3) }
func (childTB) Fatalf(f string, args ...any) { fmt.Fprintf(os.Stderr, f+"\n", args...); os.Exit(3) }
func (childTB) TempDir() string {
	d, err := os.MkdirTemp("", "karapace-child")
	if err != nil {
		os.Exit(3)
	}
	return d
}

func runChild(mode, root, proj, cycles string) int {
	t := childTB{}
	ctx := context.Background()
	e := newEngineAt(t, root)
	n := -1 // endless
	if c, err := strconv.Atoi(cycles); err == nil {
		n = c
	}
	must := func(err error) {
		if err != nil {
			fmt.Fprintf(os.Stderr, "child %s: %v\n", mode, err)
			os.Exit(2)
		}
	}
	pkgs := func(i, k int) []string {
		var p []string
		for j := 0; j <= i%k; j++ {
			p = append(p, fmt.Sprintf("pkg%d", j))
		}
		return p
	}
	switch mode {
	case "build":
		for i := 0; i != n; i++ {
			_, err := e.Build(ctx, manifestIn(t, proj, pkgs(i, 4)...), BuildOptions{})
			must(err)
		}
	case "build_destroy":
		for i := 0; i != n; i++ {
			r, err := e.Build(ctx, manifestIn(t, proj, pkgs(i, 2)...), BuildOptions{})
			must(err)
			must(e.Destroy(ctx, r.EnvID))
		}
	case "commit", "restore":
		r, err := e.Build(ctx, manifestIn(t, proj, "git"), BuildOptions{})
		must(err)
		upper := e.layout.UpperDir(r.EnvID)
		must(os.WriteFile(filepath.Join(upper, "base.txt"), []byte("base"), 0o644))
		first, err := e.Commit(ctx, r.EnvID)
		must(err)
		for i := 0; i != n; i++ {
			must(os.WriteFile(filepath.Join(upper, fmt.Sprintf("file_%d.txt", i)), []byte("x"), 0o644))
			_, err := e.Commit(ctx, r.EnvID)
			must(err)
			if mode == "restore" {
				must(e.Restore(ctx, r.EnvID, first))
			}
		}
	case "gc":
		var ids []schema.EnvID
		dirs := make([]string, 5)
		for i := range dirs {
			dirs[i] = filepath.Join(proj, strconv.Itoa(i))
			must(os.MkdirAll(dirs[i], 0o755))
			r, err := e.Build(ctx, manifestIn(t, dirs[i], pkgs(i, 5)...), BuildOptions{})
			must(err)
			ids = append(ids, r.EnvID)
		}
		for i := 0; i != n; i++ {
			k := i % len(ids)
			must(e.Destroy(ctx, ids[k]))
			_, err := e.GC(ctx, false)
			must(err)
			_, err = e.Build(ctx, manifestIn(t, dirs[k], pkgs(k, 5)...), BuildOptions{})
			must(err)
		}
	case "destroy_gc":
		// On a full disk (TestCrashOnFullDisk): destroy every environment, a GC after
		// each; the loop ends when none is left.
		for i := 0; i != n; i++ {
			envs, err := e.List(ctx)
			must(err)
			if len(envs) == 0 {
				return 0
			}
			must(e.Destroy(ctx, envs[i%len(envs)].EnvID))
			_, err = e.GC(ctx, false)
			must(err)
		}
	case "pull":
		// A source store and an in-memory remote of the child's own; the store under
		// test pulls, destroys and pulls again.
		src := newEngineAt(t, filepath.Join(proj, "src"))
		r, err := src.Build(ctx, manifestIn(t, proj, "git", "clang"), BuildOptions{})
		must(err)
		rb := remote.NewMemory()
		_, err = src.Push(ctx, r.EnvID, rb, PushOptions{})
		must(err)
		for i := 0; i != n; i++ {
			_, err := e.Pull(ctx, r.EnvID.String(), rb)
			must(err)
			must(e.Destroy(ctx, r.EnvID))
		}
	case "enter":
		r, err := e.Build(ctx, manifestIn(t, proj, "git"), BuildOptions{})
		must(err)
		for i := 0; i != n; i++ {
			_, err := e.Exec(ctx, r.EnvID, runtime.Stdio{}, []string{"true"})
			must(err)
		}
	case "worker":
		// Concurrency: builds, commits and destroys its own env, and builds a shared one.
		shared := filepath.Join(proj, "shared")
		own := filepath.Join(proj, strconv.Itoa(os.Getpid()))
		must(os.MkdirAll(own, 0o755))
		for i := 0; i != n; i++ {
			r, err := e.Build(ctx, manifestIn(t, own, "own", strconv.Itoa(os.Getpid())), BuildOptions{})
			must(err)
			_, err = e.Commit(ctx, r.EnvID)
			must(err)
			must(e.Destroy(ctx, r.EnvID))
			// Refused while another process has a session in it: that is the rule.
			if _, err = e.Build(ctx, filepath.Join(shared, "karapace.toml"), BuildOptions{}); !errors.Is(err, ErrInvalidTransition) {
				must(err)
			}
		}
	case "exec":
		// Concurrency: sessions in the shared env from several processes at once.
		path := filepath.Join(proj, "shared", "karapace.toml")
		r, err := e.Build(ctx, path, BuildOptions{})
		if errors.Is(err, ErrInvalidTransition) {
			// Another process has a session in it: it is built; its lock names it.
			l, lerr := schema.ReadLock(lockPath(path))
			must(lerr)
			r, err = &BuildResult{EnvID: l.EnvID}, nil
		}
		must(err)
		for i := 0; i != n; i++ {
			st, err := e.Exec(ctx, r.EnvID, runtime.Stdio{}, []string{"mock:exit", "3"})
			must(err)
			if st != 3 {
				must(fmt.Errorf("exit status %d, want 3", st))
			}
		}
	default:
		fmt.Fprintf(os.Stderr, "unknown child mode %q\n", mode)
		return 2
	}
	return 0
}

func startChild(t *testing.T, mode, root, proj string, cycles int) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, "KARAPACE_CORE_ROOT="+root, "KARAPACE_CORE_PROJ="+proj, "KARAPACE_CORE_CYCLES="+strconv.Itoa(cycles))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// TestCrashRecovery kills a child with SIGKILL in the middle of each kind of
// operation, then checks that opening the store recovers it completely: no WAL entry,
// a clean verify, nothing stuck Running, no stale session, the lock free, and every
// environment that has metadata still has its writable layer.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("crash tests re-execute the test binary")
	}
	for _, mode := range []string{"build", "build_destroy", "commit", "restore", "gc", "enter", "pull"} {
		for _, delay := range []time.Duration{40 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond} {
			t.Run(fmt.Sprintf("%s/%s", mode, delay), func(t *testing.T) {
				root, proj := t.TempDir(), t.TempDir()
				cmd := startChild(t, mode, root, proj, -1)
				time.Sleep(delay)
				_ = cmd.Process.Signal(syscall.SIGKILL)
				_ = cmd.Wait()
				if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && !ws.Signaled() {
					t.Fatalf("child exited by itself (%v) before the kill", cmd.ProcessState)
				}
				if os.Getenv("DEBUG_CRASH") != "" {
					out, _ := exec.Command("sh", "-c", "cd "+root+" && find . -path ./store/objects -prune -o -print | sort && cat store/wal/*.json").CombinedOutput()
					t.Logf("after kill:\n%s", out)
				}
				e := newEngineAt(t, root)
				checkClean(t, e)
				checkAfterCrash(t, e)
			})
		}
	}
}

func checkAfterCrash(t *testing.T, e *Engine) {
	t.Helper()
	ctx := context.Background()
	// The lock is free again (flock dies with its holder).
	release, held, _, err := e.st.tryLock("test")
	if err != nil || held {
		t.Fatalf("lock not acquirable after crash: held=%v %v", held, err)
	}
	release()
	envs, err := e.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range envs {
		dir := e.layout.EnvPath(env.EnvID)
		if n, err := liveClaims(dir); err != nil || n != 0 {
			t.Errorf("env %s: %d live sessions after crash (%v)", env.ShortID, n, err)
		}
		if ents, _ := os.ReadDir(claimsDir(dir)); len(ents) != 0 {
			t.Errorf("env %s: stale session claims left: %v", env.ShortID, ents)
		}
		if env.State == Built && !exists(e.layout.UpperDir(env.EnvID)) {
			ents, _ := os.ReadDir(dir)
			t.Errorf("env %s lost its upper directory; env dir holds %v; metadata %+v", env.ShortID, ents, env)
		}
		if exists(e.layout.UpperDir(env.EnvID) + swapSuffix) {
			t.Errorf("env %s: swapped-out upper left", env.ShortID)
		}
	}
	// The store still works.
	for _, env := range envs {
		if env.State == Built {
			if _, err := e.Commit(ctx, env.EnvID); err != nil {
				t.Errorf("commit after recovery: %v", err)
			}
			if err := e.Destroy(ctx, env.EnvID); err != nil {
				t.Errorf("destroy after recovery: %v", err)
			}
		}
	}
	if _, err := e.GC(ctx, false); err != nil {
		t.Fatal(err)
	}
	checkClean(t, e)
}
