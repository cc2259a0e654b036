package runtimetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/namespace"
	"github.com/karapace/karapace/runtime/oci"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// missing fails under CI=true, and skips loudly otherwise.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): %s", why)
	}
	t.Skipf("SKIPPING: %s (this test fails under CI=true)", why)
}

func requireNamespaces(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPING: end-to-end runtime test in -short mode")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		missing(t, "user namespaces are disabled (user.max_user_namespaces = 0)")
	}
}

// rootfsFor returns a rootfs the caller may use as a lower layer: the shared fixture for
// root; for an unprivileged caller a copy it owns (the fixture's root-owned files would
// be unmapped in its user namespace).
func rootfsFor(t testing.TB, fixture string) string {
	t.Helper()
	if os.Geteuid() == 0 {
		return fixture
	}
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", "--no-preserve=ownership", fixture, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the rootfs: %v: %s", err, out)
	}
	return dst
}

// ociBackend is the OCI backend pinned to one runtime; the test fails under CI when the
// runtime is not installed.
func ociBackend(name string) func(t testing.TB) runtime.Backend {
	return func(t testing.TB) runtime.Backend {
		t.Helper()
		if _, err := exec.LookPath(name); err != nil {
			missing(t, name+" is not installed (apt-get install "+name+")")
		}
		b := oci.New(oci.Options{Host: Host(t), Runtime: oci.Host{Getenv: func(k string) string {
			if k == oci.EnvRuntime {
				return name
			}
			return ""
		}}})
		rt, err := b.Runtime(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if rt.Name != name {
			t.Fatalf("runtime %s selected, want %s", rt.Name, name)
		}
		return b
	}
}

func namespaceBackend(t testing.TB) runtime.Backend {
	return namespace.New(namespace.BackendOptions{Host: Host(t)})
}

// backends are every real backend the suite runs against.
var backends = []struct {
	name string
	new  func(t testing.TB) runtime.Backend
}{
	{"namespace", namespaceBackend},
	{"oci-crun", ociBackend("crun")},
	{"oci-runc", ociBackend("runc")},
}

func TestConformanceBusybox(t *testing.T) {
	requireNamespaces(t)
	rootfs := rootfsFor(t, testrootfs.Busybox(t))
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) { Run(t, func(t *testing.T) runtime.Backend { return be.new(t) }, rootfs) })
	}
}

// TestConformanceDebian runs one session per backend on a Debian rootfs.
func TestConformanceDebian(t *testing.T) {
	requireNamespaces(t)
	rootfs := testrootfs.Debian(t, "bookworm")
	if os.Geteuid() != 0 {
		t.Skip("the Debian case runs as root; the rootless run covers busybox")
	}
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			b := be.new(t)
			spec := Env(t, b.Name(), rootfs, t.Name())
			defer NothingLeft(t, b, spec)
			code, out := Exec(t, b, spec, "", "sh", "-c", "cat /etc/debian_version; id -u; apt-get --version | head -n1; echo x >/var/karapace-kept")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "12") || lines[1] != "0" || !strings.HasPrefix(lines[2], "apt ") {
				t.Fatalf("exit %d output %q", code, out)
			}
			if _, err := os.Stat(filepath.Join(spec.EnvDir, "upper", "var", "karapace-kept")); err != nil {
				t.Errorf("write did not land in upper: %v", err)
			}
		})
	}
}
