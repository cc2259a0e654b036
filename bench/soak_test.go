package bench

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestKillSoak runs random build / commit / restore / destroy / gc commands of the real
// binary and SIGKILLs most of them at a random moment. After each, a normal command
// recovers the store; then verify-store must be clean, no temp, staging or WAL entry
// may remain, and the file the test wrote into each environment's upper directory must
// still be there. KARAPACE_SOAK (a duration, default 20s; 5s with -short) bounds it and
// KARAPACE_SOAK_SEED replays a run.
func TestKillSoak(t *testing.T) {
	budget := 20 * time.Second
	if testing.Short() {
		budget = 5 * time.Second
	}
	if d, err := time.ParseDuration(os.Getenv("KARAPACE_SOAK")); err == nil {
		budget = d
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("KARAPACE_SOAK_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (KARAPACE_SOAK_SEED=%d replays this run), budget %v", seed, seed, budget)
	rng := rand.New(rand.NewPCG(seed, 0))

	u := newUser(t, "")
	names := []string{"a", "b", "c"}
	for i, n := range names {
		u.manifest(n+".toml", fmt.Sprintf("pkg%d", i))
	}
	// written: environment id -> the content of the file the test put into its upper.
	written := map[string]string{}
	// snaps: environment id -> snapshots taken of it (all hold the written file).
	snaps := map[string][]string{}
	var ops, kills, iter, agedSweeps int

	// settle recovers, verifies and checks the user's files after each command.
	settle := func(what string) {
		t.Helper()
		u.ok("gc") // a mutating command: opening the engine recovers the WAL first
		ents, _ := os.ReadDir(filepath.Join(u.store, "store", "wal"))
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".tmp") {
				b, _ := os.ReadFile(filepath.Join(u.store, "store", "wal", e.Name()))
				t.Fatalf("%s: recovery left the WAL entry %s:\n%s", what, e.Name(), b)
			}
		}
		// A temp file or staging entry of a killed writer is swept by gc once it is older
		// than any live writer's could be (10 minutes): age them and gc again.
		if left := leftovers(u.store); len(left) > 0 {
			old := time.Now().Add(-11 * time.Minute)
			for _, p := range left {
				if err := os.Chtimes(filepath.Join(u.store, p), old, old); err != nil {
					t.Fatal(err)
				}
			}
			u.ok("gc")
			agedSweeps++
		}
		u.verifyClean(what)
		envs := u.list()
		live := map[string]bool{}
		for _, e := range envs {
			live[e.EnvID] = true
			want, ok := written[e.EnvID]
			if !ok {
				continue
			}
			got, err := os.ReadFile(filepath.Join(u.upper(e.EnvID), "user-data"))
			if err != nil || string(got) != want {
				t.Fatalf("%s: environment %s lost the user's file in upper: %q %v", what, e.EnvID, got, err)
			}
		}
		for id := range written {
			if !live[id] {
				delete(written, id)
				delete(snaps, id)
			}
		}
		// Every environment gets a user file, once it exists.
		for _, e := range envs {
			if _, ok := written[e.EnvID]; !ok {
				data := fmt.Sprintf("written at iteration %d\n", iter)
				if err := os.WriteFile(filepath.Join(u.upper(e.EnvID), "user-data"), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
				written[e.EnvID] = data
			}
		}
	}

	typical := 30 * time.Millisecond // moving average of an unkilled command's run
	deadline := time.Now().Add(budget)
	for ; time.Now().Before(deadline); iter++ {
		envs := u.list()
		name := names[rng.IntN(len(names))]
		e, exists := envs[name]
		var args []string
		switch op := rng.IntN(5); {
		case !exists || op == 0:
			args = []string{"build", name + ".toml", "--name", name}
		case op == 1:
			args = []string{"commit", name}
		case op == 2 && len(snaps[e.EnvID]) > 0:
			s := snaps[e.EnvID]
			args = []string{"restore", name, s[rng.IntN(len(s))]}
		case op == 3:
			args = []string{"destroy", name}
		default:
			args = []string{"gc"}
		}
		c := u.cmd(append([]string{"--json"}, args...)...)
		out := &limitedBuffer{}
		c.Stdout = out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		killed := false
		started := time.Now()
		if rng.IntN(10) < 7 {
			// Somewhere within a typical command's run, so that most kills land mid-way.
			delay := time.Duration(rng.Int64N(int64(typical)))
			timer := time.AfterFunc(delay, func() { _ = c.Process.Kill() })
			err := c.Wait()
			timer.Stop()
			killed = err != nil && c.ProcessState != nil && !c.ProcessState.Exited()
			if err != nil && !killed {
				t.Fatalf("karapace %v failed without being killed: %v", args, err)
			}
		} else if err := c.Wait(); err != nil {
			t.Fatalf("karapace %v: %v", args, err)
		}
		ops++
		if !killed {
			typical = (3*typical + time.Since(started)) / 4
		}
		if killed {
			kills++
		} else if args[0] == "commit" {
			var res struct {
				SnapshotHash string `json:"snapshot_hash"`
			}
			if err := json.Unmarshal(out.Bytes(), &res); err != nil || len(res.SnapshotHash) != 64 {
				t.Fatalf("commit output: %q %v", out.Bytes(), err)
			}
			snaps[e.EnvID] = append(snaps[e.EnvID], res.SnapshotHash)
		}
		settle(fmt.Sprintf("iteration %d (%v, killed %v)", iter, args, killed))
	}
	t.Logf("%d commands, %d killed with SIGKILL mid-run, store clean after each (%d times only after gc swept aged temp files)", ops, kills, agedSweeps)
	if kills == 0 {
		t.Fatal("no command was killed: the soak tested nothing")
	}
}

// limitedBuffer keeps the first 1 MiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 1<<20 - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) Bytes() []byte { return l.b }
