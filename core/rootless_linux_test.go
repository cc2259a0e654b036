//go:build linux

package core

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

// rootlessUser is the unprivileged user .ci/test-user creates (with a subordinate id
// range).
const rootlessUser = "karapace-test"

// TestRootlessEngine re-runs the engine's end-to-end and crash tests as an unprivileged
// user: the test binary is copied where that user can execute it and started with its
// credentials. Rootless is the product's point, so it is proven, not assumed.
func TestRootlessEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: rootless end-to-end run in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("already unprivileged: the suite itself is the rootless run")
	}
	u, err := user.Lookup(rootlessUser)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): user %s (create it with .ci/test-user)", rootlessUser)
		}
		t.Skipf("SKIPPING: user %s does not exist (create it with .ci/test-user; this test fails under CI=true)", rootlessUser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	testrootfs.Busybox(t) // build the shared fixture as root first

	dir, err := os.MkdirTemp("", "karapace-core-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "core.test")
	if err := copyExecutable(os.Args[0], bin); err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("KARAPACE_TEST_CACHE")
	if cache == "" {
		cache = "/var/tmp/karapace-test-cache"
	}
	args := []string{"-test.run", "^(TestEngineOnNamespaceBackend|TestPullOnNamespaceBackend|TestCrashRecovery|TestConcurrentSessions|TestCommitRestoreRoundTrip)$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = home
	cmd.Env = []string{
		"HOME=" + home, "USER=" + rootlessUser, "TMPDIR=" + home,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"KARAPACE_TEST_CACHE=" + cache, "CI=" + os.Getenv("CI"),
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("rootless run as %s (uid %d):\n%s", rootlessUser, uid, out)
	if err != nil {
		t.Fatalf("the engine suite failed as %s: %v", rootlessUser, err)
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
