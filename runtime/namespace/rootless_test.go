package namespace

import (
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// rootlessUser runs the suite unprivileged; .ci/test-user creates it with a subordinate
// id range.
const rootlessUser = "karapace-test"

// TestRootless re-runs this package's end-to-end tests as an unprivileged user: the test
// binary is copied where that user can execute it and started with its credentials.
func TestRootless(t *testing.T) {
	requireNamespaces(t)
	if os.Geteuid() != 0 {
		t.Skip("already unprivileged: the suite itself is the rootless run")
	}
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		missing(t, "user "+rootlessUser+" does not exist (create it with .ci/test-user)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	testrootfs.Busybox(t) // build the shared fixture as root first

	dir, err := os.MkdirTemp("", "karapace-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "namespace.test")
	if err := copyFile(os.Args[0], bin, 0o755); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	// The Debian fixture's directory is root's alone: hand the child a readable copy of
	// its tarball.
	debian := filepath.Join(dir, "debian.tar.zst")
	if err := copyFile(testrootfs.DebianTarball(t, "bookworm"), debian, 0o644); err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("KARAPACE_TEST_CACHE")
	if cache == "" {
		cache = "/var/tmp/karapace-test-cache"
	}
	// The child's own timeout makes a hang print its goroutines into the log below.
	args := []string{"-test.run", "^Test(Run|Backend)", "-test.count=1", "-test.timeout=8m"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = home
	cmd.Env = []string{
		"HOME=" + home, "USER=" + rootlessUser, "TMPDIR=" + home,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"KARAPACE_TEST_CACHE=" + cache, "CI=" + os.Getenv("CI"), debianTarballEnv + "=" + debian,
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("rootless run as %s (uid %d):\n%s", rootlessUser, uid, out)
	if err != nil {
		t.Fatalf("the end-to-end suite failed as %s: %v", rootlessUser, err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
