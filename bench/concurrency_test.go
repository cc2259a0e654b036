package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// N processes of the built binary mutate one store at once: each builds its own
// manifest, writes into its environment, commits, restores, and runs gc, while the
// others do the same. Every command must succeed or fail cleanly (an error message and
// exit code, never a panic or a signal); afterwards verify-store is clean, nothing is
// left behind, and every environment holds what its process wrote.
func TestConcurrentProcesses(t *testing.T) {
	const procs, rounds = 6, 3
	u := newUser(t, "")
	for p := 0; p < procs; p++ {
		u.manifest(fmt.Sprintf("m%d.toml", p), fmt.Sprintf("pkg-%d", p))
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
		ran      int
	)
	ids := make([]string, procs)
	run := func(p int, args ...string) (result, bool) {
		r := u.run(append([]string{"--json", "--lock-timeout", "2m"}, args...)...)
		mu.Lock()
		defer mu.Unlock()
		ran++
		unclean := r.code < 0 || r.code > 3 || strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ")
		if unclean || r.code != 0 {
			failures = append(failures, fmt.Sprintf("process %d: karapace %s: %s", p, strings.Join(args, " "), r))
		}
		return r, r.code == 0
	}
	for p := 0; p < procs; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("e%d", p)
			for round := 0; round < rounds; round++ {
				r, ok := run(p, "build", fmt.Sprintf("m%d.toml", p), "--name", name)
				if !ok {
					return
				}
				var b struct {
					EnvID string `json:"env_id"`
				}
				if json.Unmarshal([]byte(r.stdout), &b) != nil {
					return
				}
				ids[p] = b.EnvID
				data := fmt.Sprintf("process %d round %d", p, round)
				if err := os.WriteFile(filepath.Join(u.upper(b.EnvID), "user-data"), []byte(data), 0o644); err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					return
				}
				r, ok = run(p, "commit", name)
				if !ok {
					return
				}
				var c struct {
					SnapshotHash string `json:"snapshot_hash"`
				}
				_ = json.Unmarshal([]byte(r.stdout), &c)
				if _, ok := run(p, "gc"); !ok {
					return
				}
				if _, ok := run(p, "restore", name, c.SnapshotHash); !ok {
					return
				}
				if _, ok := run(p, "list"); !ok {
					return
				}
				if round < rounds-1 {
					if _, ok := run(p, "destroy", name); !ok {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d processes ran %d commands on one store", procs, ran)
	u.verifyClean("after the concurrent processes")
	for p, id := range ids {
		got, err := os.ReadFile(filepath.Join(u.upper(id), "user-data"))
		want := fmt.Sprintf("process %d round %d", p, rounds-1)
		if err != nil || string(got) != want {
			t.Errorf("environment of process %d: user-data %q %v, want %q", p, got, err, want)
		}
	}
}
