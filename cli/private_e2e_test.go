package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestCLIStorePrivate is the attack of issue 17: root makes a setuid-root binary inside
// an environment (`chmod 4755`), in a store under a directory every user may traverse,
// and another local user tries to reach it. The store's directories are 0700, so the
// other user can neither stat nor run it; a store opened up again (an older version's
// 0755 layout) stays as it is through read-only commands and is private again after
// the next command that changes it.
func TestCLIStorePrivate(t *testing.T) {
	other := testrootfs.RootlessUser(t) // root runs karapace; the test user attacks
	w := busyboxWorld(t, "namespace")
	base, err := os.MkdirTemp("", "karapace-cli-private-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	w.store = filepath.Join(base, "store")
	w.env = append(w.env, "KARAPACE_STORE="+w.store)

	id := w.buildNamed("karapace.toml", "bb")
	w.ok("exec", "bb", "--", "/bin/sh", "-c", "cp /bin/busybox /root/busybox-suid && chmod 4755 /root/busybox-suid")
	suid := filepath.Join(w.store, "env", id, "upper", "root", "busybox-suid")
	fi, err := os.Lstat(suid)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); fi.Mode()&os.ModeSetuid == 0 || st.Uid != 0 {
		t.Fatalf("the environment's chmod 4755 did not make a setuid-root file: %v uid %d", fi.Mode(), st.Uid)
	}
	private := []string{w.store, filepath.Join(w.store, "env"), filepath.Join(w.store, "env", id),
		filepath.Join(w.store, "store", "staging")}
	wantDirModes(t, 0o700, private...)
	// upper stays 0755: it is the environment's "/", which its non-root users traverse.
	if r := w.ok("exec", "bb", "--", "/bin/stat", "-c", "%a", "/"); r.stdout != "755\n" {
		t.Errorf("the environment's / should stay 0755: %s", r)
	}

	// attack runs argv as the other user and reports whether it got at the file (the
	// copy is named busybox-*, so busybox runs it as its multi-call binary).
	attack := func(argv ...string) (string, bool) {
		c := exec.Command(argv[0], argv[1:]...)
		c.Dir, c.Env = "/", []string{"PATH=/usr/bin:/bin"}
		c.SysProcAttr = &syscall.SysProcAttr{Credential: other.Credential()}
		out, err := c.CombinedOutput()
		return strings.TrimSpace(string(out)), err == nil
	}
	refused := func(when string) {
		t.Helper()
		if out, ok := attack("stat", "-c", "%a %u", suid); ok {
			t.Errorf("%s: the other user could stat the setuid file: %s", when, out)
		}
		if out, ok := attack(suid, "id", "-u"); ok {
			t.Errorf("%s: the other user could run the setuid file: %s", when, out)
		}
	}
	refused("new store")

	// An older version's store: every directory 0755, the file within reach.
	for _, d := range private {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, ok := attack("stat", "-c", "%a %u", suid); !ok || out != "4755 0" {
		t.Fatalf("the opened-up store should expose the file (or the attack proves nothing): %q %v", out, ok)
	}
	w.ok("list")
	w.ok("inspect", "bb")
	w.ok("diff", "bb")
	wantDirModes(t, 0o755, private...)
	w.ok("rename", "bb", "bb2")
	wantDirModes(t, 0o700, private...)
	refused("tightened store")
}

func wantDirModes(t *testing.T, want os.FileMode, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", d, fi.Mode().Perm(), want)
		}
	}
}
