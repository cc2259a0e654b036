package oci

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

// TestRootless re-runs the terminal and crash tests as the unprivileged karapace-test
// user (created by .ci/test-user with a subordinate id range): the shim then runs in a
// user namespace of its own, mapped with newuidmap/newgidmap.
func TestRootless(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: OCI end-to-end test in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("already unprivileged: this is the rootless run")
	}
	u, err := user.Lookup("karapace-test")
	if err != nil {
		missing(t, "user karapace-test does not exist (create it with .ci/test-user)")
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	testrootfs.Busybox(t) // build the shared fixture as root first
	dir, err := os.MkdirTemp("", "karapace-oci-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "oci.test")
	if err := copyBinary(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	args := []string{"-test.run", "^Test(EnterTerminal|CrashCleanup)$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = home
	cmd.Env = []string{
		"HOME=" + home, "USER=karapace-test", "TMPDIR=" + home,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"KARAPACE_TEST_CACHE=" + testrootfs.CacheDir(), "CI=" + os.Getenv("CI"),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("rootless run as karapace-test (uid %d):\n%s", uid, out)
	if err != nil {
		t.Fatalf("the OCI tests failed as karapace-test: %v", err)
	}
}

func copyBinary(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
