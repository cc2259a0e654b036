//go:build linux

package core

import (
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestRootlessEngine re-runs the engine's end-to-end and crash tests as the unprivileged
// test user (see testrootfs.RootlessUser). Rootless is the product's point, so it is
// proven, not assumed.
func TestRootlessEngine(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: rootless end-to-end run in -short mode")
	}
	u := testrootfs.RootlessUser(t)
	testrootfs.Busybox(t) // build the shared fixture as root first
	args := []string{"-test.run", "^(TestEngineOnNamespaceBackend|TestPullOnNamespaceBackend|TestCrashRecovery|TestConcurrentSessions|TestCommitRestoreRoundTrip)$", "-test.count=1"}
	if testing.Verbose() {
		args = append(args, "-test.v")
	}
	out, err := u.TestBinary(t, args...).CombinedOutput()
	t.Logf("rootless run as %s (uid %d):\n%s", u.Name, u.UID, out)
	if err != nil {
		t.Fatalf("the engine suite failed as %s: %v", u.Name, err)
	}
}
