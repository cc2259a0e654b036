package testrootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// BusyboxBinary is where Debian's busybox-static package installs its static binary.
const BusyboxBinary = "/bin/busybox"

// Busybox returns a tiny root file system made from Debian's static busybox: /bin/busybox
// and a symlink for every applet, /etc/passwd and /etc/group (root and nobody), /root,
// /tmp, and empty /proc, /sys, /dev, /run, /home mount points. It is built once per
// busybox binary under $KARAPACE_TEST_CACHE (default /var/tmp/karapace-test-cache)/busybox-<hash>/rootfs and shared by every test: never
// write to it (use it as an overlay's lower layer). Files are world-readable, so an
// unprivileged test user can use the same cache.
//
// Without busybox-static it fails under CI=true and skips loudly otherwise.
func Busybox(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath(BusyboxBinary)
	if err != nil {
		busyboxMissing(t, "busybox-static is not installed (apt-get install busybox-static): "+err.Error())
	}
	sum, err := fileSHA256(bin)
	if err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	if out, err := exec.Command("file", "-L", bin).Output(); err == nil && strings.Contains(string(out), "dynamically linked") {
		busyboxMissing(t, bin+" is not static: install busybox-static rather than busybox")
	}
	cache := os.Getenv("KARAPACE_TEST_CACHE")
	if cache == "" {
		cache = "/var/tmp/karapace-test-cache"
	}
	final := filepath.Join(cache, "busybox-v3-"+sum[:16])
	rootfs := filepath.Join(final, "rootfs")
	if busyboxComplete(final) {
		return rootfs
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		busyboxMissing(t, fmt.Sprintf("cannot create the fixture cache %s: %v", cache, err))
	}
	lock, err := os.OpenFile(filepath.Join(cache, ".busybox.lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	defer lock.Close()
	for {
		err = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		t.Fatalf("testrootfs: flock: %v", err)
	}
	if busyboxComplete(final) {
		return rootfs
	}
	tmp, err := os.MkdirTemp(cache, ".tmp-busybox-")
	if err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	defer os.RemoveAll(tmp)
	if err := buildBusybox(bin, filepath.Join(tmp, "rootfs")); err != nil {
		t.Fatalf("testrootfs: busybox rootfs: %v", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, "complete"), nil, 0o644); err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	os.RemoveAll(final)
	if err := os.Rename(tmp, final); err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	return rootfs
}

// busyboxMissing fails the test under CI=true and skips it loudly otherwise.
func busyboxMissing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): %s", why)
	}
	t.Skipf("SKIPPING: %s (this test fails under CI=true)", why)
}

func busyboxComplete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "complete"))
	return err == nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func buildBusybox(bin, root string) error {
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"", 0o755}, {"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755},
		{"usr/sbin", 0o755}, {"etc", 0o755}, {"root", 0o755}, {"home", 0o755},
		{"tmp", 0o777 | os.ModeSticky}, {"var", 0o755}, {"var/tmp", 0o777 | os.ModeSticky}, {"proc", 0o555},
		{"sys", 0o555}, {"dev", 0o755}, {"run", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(p, d.mode); err != nil {
			return err
		}
	}
	in, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(root, "bin/busybox"), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	list, err := exec.Command(bin, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("busybox --list-full: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		applet = strings.TrimPrefix(applet, "/")
		if applet == "bin/busybox" || strings.Contains(applet, "..") {
			continue
		}
		dst := filepath.Join(root, applet)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		if err := os.Symlink("/bin/busybox", dst); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd":   "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":    "root:x:0:\nnogroup:x:65534:\n",
		"etc/hostname": "busybox\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
