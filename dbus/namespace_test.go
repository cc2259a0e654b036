package dbus

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// TestNamespaceBackendThroughBinary drives the real namespace backend through the
// built karapace-dbus, started by D-Bus activation: it builds an environment from a
// busybox image (the binary re-executes itself into the sandbox), verifies the store
// and destroys the environment.
func TestNamespaceBackendThroughBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("real namespace builds are not short")
	}
	rootfs := testrootfs.Busybox(t)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	a := startActivatable(t, "KARAPACE_DBUS_IDLE_TIMEOUT=60")

	dir := t.TempDir()
	manifest := filepath.Join(dir, "karapace.toml")
	if err := os.WriteFile(manifest, []byte("manifest_version = 1\n\n[base]\nimage = \""+tarball+"\"\n\n[runtime]\nbackend = \"namespace\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	b := decode[built](t, a.call("BuildNamedEnvironment", manifest, "box"))
	t.Logf("namespace build through D-Bus: %s", time.Since(start))
	if b.State != "built" || b.Name != "box" {
		t.Fatalf("build reply %+v", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "karapace.lock")); err != nil {
		t.Fatalf("no lock file next to the manifest: %v", err)
	}
	if v := decode[verifyReply](t, a.call("VerifyStore")); v.Checked == 0 || v.Failed != 0 {
		t.Fatalf("VerifyStore = %+v", v)
	}

	if got := a.call("DestroyEnvironment", "box"); got != `{"destroyed":"`+b.EnvID+`"}` {
		t.Fatalf("destroy reply %s", got)
	}
	if envs := decode[[]status](t, a.call("ListEnvironments")); len(envs) != 0 {
		t.Fatalf("after destroy: %+v", envs)
	}
}
