package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

const rootlessEnv = "KARAPACE_DOCTOR_ROOTLESS_CHILD"

// The probes as an unprivileged user: root re-runs this test binary as the test user
// (see testrootfs.RootlessUser), where TestRootlessChild asserts what a rootless user
// must have.
func TestRunRealProbesRootless(t *testing.T) {
	u := testrootfs.RootlessUser(t)
	cmd := u.TestBinary(t, "-test.run=^TestRootlessChild$", "-test.v", "-test.count=1")
	cmd.Env = append(cmd.Env, rootlessEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("as %s (uid %d):\n%s", u.Name, u.UID, out)
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
