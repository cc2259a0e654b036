package bench

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/karapace/karapace/store"
)

// smallTmpfs mounts a tmpfs of the given size on a temp dir (root only) and unmounts it
// when the test ends.
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	requireReal(t, os.Geteuid() == 0, "mounting a small tmpfs needs root")
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", syscall.MS_NOSUID|syscall.MS_NODEV, "size="+size+",mode=0755"); err != nil {
		requireReal(t, false, "tmpfs mount failed: "+err.Error())
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			_ = syscall.Unmount(dir, syscall.MNT_DETACH)
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fillUp writes a filler file until the file system is full and returns its path.
func fillUp(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for len(chunk) > 0 {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatal(err)
			}
			chunk = chunk[:len(chunk)/2]
		}
	}
	return p
}

// snapshotState is what must not change when a command fails for lack of space: the
// environments (ids, names, states), each one's snapshots and the user's file in upper.
func (u *user) state(ids []string) string {
	u.t.Helper()
	var envs []envRecord
	u.jsonOK(&envs, "list")
	slices.SortFunc(envs, func(a, b envRecord) int { return strings.Compare(a.EnvID, b.EnvID) })
	b, _ := json.Marshal(envs)
	s := string(b)
	for _, id := range ids {
		r := u.run("--json", "snapshots", id)
		s += "\n" + r.stdout
		data, err := os.ReadFile(filepath.Join(u.upper(id), "user-data"))
		s += "\nuser-data: " + string(data)
		if err != nil {
			s += err.Error()
		}
	}
	return s
}

var noSpace = regexp.MustCompile(`(?i)no space left on device`)

// Every mutating command on a full store fails with a clear "no space left on device"
// and the store error exit code (3); once space is freed the store verifies, nothing
// was lost, and the same command succeeds. The commands that free space, destroy and
// gc, work on the full store and give the space back.
func TestFullDisk(t *testing.T) {
	mnt := smallTmpfs(t, "16m")
	u := newUser(t, filepath.Join(mnt, "store"))
	u.manifest("a.toml", "git")
	u.manifest("b.toml", "curl")
	u.manifest("c.toml", "make")
	var ids []string
	for _, n := range []string{"a", "b"} {
		var res struct {
			EnvID string `json:"env_id"`
		}
		u.jsonOK(&res, "build", n+".toml", "--name", n)
		ids = append(ids, res.EnvID)
		if err := os.WriteFile(filepath.Join(u.upper(res.EnvID), "user-data"), []byte("precious "+n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var commit struct {
		SnapshotHash string `json:"snapshot_hash"`
	}
	u.jsonOK(&commit, "commit", "a")
	// An orphan object, so that gc has something to delete.
	st, err := store.Open(context.Background(), u.store, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Objects.PutBytes(context.Background(), []byte("orphan")); err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name string
		args []string
		prep func()
	}{
		{"build", []string{"build", "c.toml", "--name", "c"}, nil},
		{"commit", []string{"commit", "a"}, func() {
			// New content, so that commit has a new snapshot to write.
			if err := os.WriteFile(filepath.Join(u.upper(ids[0]), "more"), []byte("more"), 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{"restore", []string{"restore", "a", commit.SnapshotHash}, nil},
		{"rename", []string{"rename", "a", "renamed"}, nil},
		{"migrate", []string{"migrate"}, func() { makeV1(t, u.store) }},
	}
	for _, c := range cases {
		// Taken before prep: migrate's prep makes a format-1 store, which list refuses.
		before, named := u.state(ids), u.list()
		if c.prep != nil {
			c.prep()
		}
		files := storeFiles(t, u.store)
		filler := fillUp(t, mnt)
		r := u.run(c.args...)
		out := r.stderr
		if c.name == "migrate" {
			// migrate reports its outcome on stdout, as the original does.
			out = r.stdout
		}
		if r.code != 3 || !noSpace.MatchString(out) {
			t.Errorf("%s on a full disk: want exit 3 and \"no space left on device\", got %s", c.name, r)
		}
		if left := leftovers(u.store); len(left) > 0 {
			t.Errorf("%s on a full disk left %v", c.name, left)
		}
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		// No file the store held was removed or changed. Objects a failed command wrote
		// may stay (gc's job), but a failed migrate must leave no trace at all.
		after := storeFiles(t, u.store)
		for p, sum := range files {
			if after[p] != sum {
				t.Errorf("%s on a full disk removed or changed %s", c.name, p)
			}
		}
		if c.name == "migrate" {
			for p := range after {
				if _, ok := files[p]; !ok {
					t.Errorf("migrate on a full disk left %s", p)
				}
			}
		} else {
			u.verifyClean(c.name + " after the disk was freed")
			if now := u.state(ids); now != before {
				t.Errorf("%s on a full disk changed the store:\nbefore: %s\nafter:  %s", c.name, before, now)
			}
		}
		// With space, the same command succeeds.
		u.ok(c.args...)
		u.verifyClean(c.name + " with space")
		switch c.name {
		case "rename":
			u.ok("rename", "renamed", "a")
		case "migrate":
			// Format 1 had no names; the environments and their data are all there.
			for name, e := range named {
				u.ok("rename", e.EnvID, name)
			}
			if now := u.state(ids); now != before {
				t.Errorf("migrate lost data:\nbefore: %s\nafter:  %s", before, now)
			}
		}
	}

	filler := fillUp(t, mnt)
	files := storeFiles(t, u.store)
	u.ok("gc", "--dry-run")
	if after := storeFiles(t, u.store); !maps.Equal(after, files) {
		t.Errorf("gc --dry-run on a full disk changed the store")
	}
	for _, ref := range []string{"a", "b"} {
		u.ok("destroy", ref)
	}
	var gc struct {
		RemovedObjects int `json:"removed_objects"`
	}
	u.jsonOK(&gc, "gc")
	if gc.RemovedObjects == 0 {
		t.Errorf("gc on a full disk removed no object")
	}
	if left := leftovers(u.store); len(left) > 0 {
		t.Errorf("destroy and gc on a full disk left %v", left)
	}
	u.verifyClean("destroy and gc on a full disk")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
}

// storeFiles maps every regular file under root (the lock files aside: every command
// rewrites them) to its content.
func storeFiles(t *testing.T, root string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The lock and its holder's note; the recovery stamp, a cache every lock
		// holder spoils before its work (core/recovery.go).
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".lock") || d.Name() == ".settled" {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		files[rel] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// makeV1 turns the store into a format-1 store: version 1 and metadata records without
// the keys version 2 added.
func makeV1(t *testing.T, root string) {
	t.Helper()
	dir := filepath.Join(root, "store", "metadata")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		delete(m, "name")
		delete(m, "policy_layer")
		delete(m, "checksum")
		out, _ := json.MarshalIndent(m, "", "  ")
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "store", "version"), []byte("{\"format_version\": 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}
