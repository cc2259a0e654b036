package runtimetest

import (
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestRootless re-runs the conformance suite as the unprivileged test user (see
// testrootfs.RootlessUser).
func TestRootless(t *testing.T) {
	requireNamespaces(t)
	u := testrootfs.RootlessUser(t)
	testrootfs.Busybox(t) // build the shared fixture as root first
	args := []string{"-test.run", "^TestConformanceBusybox$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	out, err := u.TestBinary(t, args...).CombinedOutput()
	t.Logf("rootless run as %s (uid %d):\n%s", u.Name, u.UID, out)
	if err != nil {
		t.Fatalf("the conformance suite failed as %s: %v", u.Name, err)
	}
}
