package dbus

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestNamespaceSessionFromTerminal opens a real namespace session from D-Bus: the
// activated karapace-dbus starts a terminal (a script that runs its -e command as a
// terminal emulator would), which runs the real karapace CLI found next to
// karapace-dbus; `karapace enter` starts the environment's shell, which reads end of
// file from /dev/null and exits 0.
func TestNamespaceSessionFromTerminal(t *testing.T) {
	if testing.Short() {
		t.Skip("real namespace sessions are not short")
	}
	rootfs := testrootfs.Busybox(t)
	cliBinary(t)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v: %s", err, out)
	}
	term := t.TempDir()
	out := filepath.Join(term, "session.out")
	script := "#!/bin/sh\n[ \"$1\" = -e ] && shift\n\"$@\" > " + out + ".tmp 2>&1\necho \"exit $?\" >> " + out + ".tmp\nmv " + out + ".tmp " + out + "\n"
	if err := os.WriteFile(filepath.Join(term, "x-terminal-emulator"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	a := startActivatable(t, "KARAPACE_DBUS_IDLE_TIMEOUT=60", "PATH="+term+":"+os.Getenv("PATH"))
	manifest := filepath.Join(t.TempDir(), "karapace.toml")
	if err := os.WriteFile(manifest, []byte("manifest_version = 1\n\n[base]\nimage = \""+tarball+"\"\n\n[runtime]\nbackend = \"namespace\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := decode[built](t, a.call("BuildEnvironment", manifest))
	r := decode[runReply](t, a.call("RunEnvironment", b.ShortID))
	var session []byte
	if !waitFor(60*time.Second, func() bool {
		var err error
		session, err = os.ReadFile(out)
		return err == nil
	}) {
		t.Fatalf("the session never ended (terminal pid %d)\n%s", r.PID, a.log.String())
	}
	if !strings.HasSuffix(strings.TrimSpace(string(session)), "exit 0") {
		t.Fatalf("karapace enter in the terminal:\n%s", session)
	}
	if !waitFor(10*time.Second, func() bool {
		return decode[status](t, a.call("GetEnvironmentStatus", b.EnvID)).State == "built"
	}) {
		t.Fatal("the environment did not return to built after the session")
	}
}
