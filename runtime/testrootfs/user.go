package testrootfs

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// User is the unprivileged account rootless tests run as: $KARAPACE_TEST_USER, default
// karapace-test, which .ci/test-user creates with a subordinate id range.
type User struct {
	Name     string
	UID, GID int
}

// RootlessUser returns the test user. It skips the test when the process is already
// unprivileged (the test then is the rootless run), and when the user does not exist it
// fails under CI=true and skips loudly otherwise.
func RootlessUser(t testing.TB) User {
	t.Helper()
	return lookupUser(t, "KARAPACE_TEST_USER", "karapace-test")
}

// NoRangeUser is an unprivileged account without a subordinate id range
// ($KARAPACE_TEST_USER_NORANGE, default karapace-norange, which .ci/test-user creates):
// its environments map its own id only. Skips and fails as RootlessUser.
func NoRangeUser(t testing.TB) User {
	t.Helper()
	return lookupUser(t, "KARAPACE_TEST_USER_NORANGE", "karapace-norange")
}

func lookupUser(t testing.TB, env, def string) User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("already unprivileged: the other tests run as this user")
	}
	name := os.Getenv(env)
	if name == "" {
		name = def
	}
	u, err := user.Lookup(name)
	if err != nil {
		missing(t, "the test user "+name+" does not exist (create it with .ci/test-user): "+err.Error())
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		t.Fatalf("test user %s: uid %q, gid %q", name, u.Uid, u.Gid)
	}
	return User{Name: name, UID: uid, GID: gid}
}

// Credential runs a command as u, with no supplementary groups.
func (u User) Credential() *syscall.Credential {
	return &syscall.Credential{Uid: uint32(u.UID), Gid: uint32(u.GID), Groups: []uint32{}}
}

// TestBinary returns a command that re-runs the current test binary as u with args.
// The binary is copied where u can run it (go test builds in a 0700 directory); the
// command runs in a fresh home owned by u, which is also its HOME and TMPDIR, with only
// USER, PATH, CI and KARAPACE_TEST_CACHE besides (append to Env for more). Both
// directories go when the test ends.
func (u User) TestBinary(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	dir, err := os.MkdirTemp("", "karapace-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, filepath.Base(exe))
	if err := copyExecutable(exe, bin); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, u.UID, u.GID); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = home
	cmd.Env = []string{
		"HOME=" + home, "USER=" + u.Name, "TMPDIR=" + home,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"KARAPACE_TEST_CACHE=" + CacheDir(), "CI=" + os.Getenv("CI"),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.Credential()}
	return cmd
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
