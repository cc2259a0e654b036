package oci

import (
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestRootless re-runs the terminal and crash tests as the unprivileged test user (see
// testrootfs.RootlessUser): the shim then runs in a user namespace of its own, mapped
// with newuidmap/newgidmap.
func TestRootless(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: OCI end-to-end test in -short mode")
	}
	u := testrootfs.RootlessUser(t)
	testrootfs.Busybox(t) // build the shared fixture as root first
	args := []string{"-test.run", "^Test(EnterTerminal|CrashCleanup)$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	out, err := u.TestBinary(t, args...).CombinedOutput()
	t.Logf("rootless run as %s (uid %d):\n%s", u.Name, u.UID, out)
	if err != nil {
		t.Fatalf("the OCI tests failed as %s: %v", u.Name, err)
	}
}
