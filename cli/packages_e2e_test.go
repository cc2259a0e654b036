package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestCLIEverydayPackages: packages whose files or scripts belong to system users
// (man-db's files are man:man, openssh-client's postinst gives ssh-agent to _ssh) build,
// and apt-get install works inside a session, as root, as a user with a subordinate range
// and as one without (whose single mapping skips ownership changes, and whose sessions
// keep apt's downloads as root).
func TestCLIEverydayPackages(t *testing.T) {
	tarball := testrootfs.DebianTarball(t, "bookworm")
	for _, c := range []struct {
		name string
		user func(testing.TB) testrootfs.User
	}{{"root", nil}, {"user with a range", testrootfs.RootlessUser}, {"user without a range", testrootfs.NoRangeUser}} {
		t.Run(c.name, func(t *testing.T) {
			var w *world
			image := tarball
			if c.user == nil {
				w = newWorld(t)
			} else {
				u := c.user(t)
				w = userWorld(t, u)
				// The fixture cache keeps the tarball private: give the user a copy.
				image = filepath.Join(filepath.Dir(w.store), "rootfs.tar.zst")
				if out, err := exec.Command("cp", tarball, image).CombinedOutput(); err != nil {
					t.Fatalf("copy the image: %v\n%s", err, out)
				}
				if err := os.Chown(image, u.UID, u.GID); err != nil {
					t.Fatal(err)
				}
			}
			w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \""+image+"\"\n\n[system]\npackages = [\"openssh-client\", \"man-db\"]\n\n[runtime]\nbackend = \"namespace\"\n")
			w.buildNamed("karapace.toml", "pk")
			if r := w.ok("exec", "pk", "--", "sh", "-c", "ssh -V 2>&1; man -w ls"); !strings.Contains(r.stdout, "OpenSSH_") || !strings.Contains(r.stdout, "/usr/share/man/man1/ls.1.gz") {
				t.Errorf("installed packages: %s", r)
			}
			// The hostname resolves, as sudo and mail tools need.
			if r := w.ok("exec", "pk", "--", "sh", "-c", "getent hosts $(hostname)"); !strings.Contains(r.stdout, "karapace-") {
				t.Errorf("the hostname does not resolve: %s", r)
			}
			r := w.run("exec", "pk", "--", "sh", "-c", "apt-get update -q >/dev/null && apt-get install -y -q hello >/dev/null && hello")
			if r.code != 0 || r.stdout != "Hello, world!\n" {
				t.Errorf("apt-get install inside a session: %s", r)
			}
			// The fast path runs the same plan.
			if r := w.withEnv("KARAPACE_FASTEXEC=require").ok("exec", "pk", "--", "hello"); r.stdout != "Hello, world!\n" {
				t.Errorf("fast path: %s", r)
			}
			// karapace unshare reaches every file of the store, as root of a user
			// namespace with the user's map (as root, the command runs as it is).
			if r := w.ok("unshare", "--", "du", "-s", w.store); !strings.Contains(r.stdout, w.store) {
				t.Errorf("unshare du: %s", r)
			}
			if r := w.run("unshare", "--", "sh", "-c", "exit 4"); r.code != 4 {
				t.Errorf("unshare exit status: %s", r)
			}
			// Files of system users (host ids of a subordinate range) do not stop
			// rebuild, destroy or gc: what the user cannot unlink alone is removed as
			// root of a user namespace with the user's id map.
			releaseKeepers(t, w.store)
			// (--force: the session above changed the writable layer.)
			w.ok("rebuild", "--force", "--name", "pk")
			releaseKeepers(t, w.store)
			w.ok("destroy", "pk")
			w.ok("gc")
			if ents, err := os.ReadDir(filepath.Join(w.store, "env")); err != nil || len(envDirs(ents)) != 0 {
				t.Errorf("left in env/: %v %v", ents, err)
			}
			w.ok("verify-store")
		})
	}
}

// envDirs are the environment directories among a store's env/ entries (not .refs).
func envDirs(ents []os.DirEntry) []string {
	var out []string
	for _, e := range ents {
		if len(e.Name()) == 64 {
			out = append(out, e.Name())
		}
	}
	return out
}
