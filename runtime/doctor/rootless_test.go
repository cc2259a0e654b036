package doctor

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

const rootlessEnv = "KARAPACE_DOCTOR_ROOTLESS_CHILD"

// The probes as an unprivileged user: root re-runs this test binary as the CI test user
// (see .ci/test-user), where TestRootlessChild asserts what a rootless user must have.
func TestRunRealProbesRootless(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("already unprivileged: TestRunRealProbes covers this user")
	}
	name := os.Getenv("KARAPACE_TEST_USER")
	if name == "" {
		name = "karapace-test"
	}
	u, err := user.Lookup(name)
	need(t, err == nil, "the test user "+name+" (created by .ci/test-user)")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	// The go test binary lives in a 0700 build directory: copy it where the user can run it.
	dir, err := os.MkdirTemp("", "karapace-doctor-rootless-")
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
	bin := filepath.Join(dir, "doctor.test")
	if err := copyFile(exe, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), bin, "-test.run=^TestRootlessChild$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{rootlessEnv + "=1", "PATH=" + os.Getenv("PATH"), "HOME=" + u.HomeDir, "USER=" + name, "CI=" + os.Getenv("CI")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("as %s (uid %d):\n%s", name, uid, out.String())
	if err != nil {
		t.Fatalf("rootless probes: %v", err)
	}
}

func TestRootlessChild(t *testing.T) {
	if os.Getenv(rootlessEnv) != "1" {
		t.Skip("run by TestRunRealProbesRootless only")
	}
	checks := Run(context.Background(), Options{StoreRoot: filepath.Join(t.TempDir(), "store")})
	var buf bytes.Buffer
	Format(&buf, checks)
	t.Logf("\n%s", buf.String())
	m := byName(checks)
	for _, n := range []string{"user_namespaces", "overlay_kernel", "id_mapping", "store_writable"} {
		if !m[n].OK {
			t.Errorf("%s: %s", n, m[n].Detail)
		}
	}
	if !Healthy(checks) {
		t.Error("an unprivileged user with user namespaces and kernel overlayfs is not healthy")
	}
}

func copyFile(src, dst string) error {
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
