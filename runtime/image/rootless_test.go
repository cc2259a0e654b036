package image

import (
	"archive/tar"
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

	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

const (
	rootlessEnv       = "KARAPACE_IMAGE_ROOTLESS_CHILD"
	rootlessDigestEnv = "KARAPACE_IMAGE_ROOTLESS_DIGEST"
)

// rootlessTree is what an image server ships: root-owned entries, setuid programs,
// read-only directories, unreadable files and device nodes.
func rootlessTree() []tentry {
	return append(sampleTree(),
		tentry{name: "./usr/bin/su", body: "#!/bin/sh\n", typ: tar.TypeReg, mode: 0o4755},
		tentry{name: "./dev/", typ: tar.TypeDir, mode: 0o755},
		tentry{name: "./dev/null", typ: tar.TypeChar, mode: 0o666},
		tentry{name: "./ro/sub/", typ: tar.TypeDir, mode: 0o500},
		tentry{name: "./ro/sub/deep", body: "x", typ: tar.TypeReg, mode: 0o400},
	)
}

// TestEnsureRootless runs Ensure, Verify and Remove as the unprivileged CI user
// (.ci/test-user): root re-runs this test binary as that user.
func TestEnsureRootless(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("already unprivileged: the other tests run as this user")
	}
	name := os.Getenv("KARAPACE_TEST_USER")
	if name == "" {
		name = "karapace-test"
	}
	u, err := user.Lookup(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): the test user %s (created by .ci/test-user): %v", name, err)
		}
		t.Skipf("SKIPPING: no test user %s (run .ci/test-user as root to create it); this test fails under CI=true", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	data := compressAs(t, makeTar(t, rootlessTree()...), CompressionZstd)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	if err := os.WriteFile(tarball, data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball})

	// The go test binary lives in a 0700 build directory: copy it where the user can run it.
	dir, err := os.MkdirTemp("", "karapace-image-rootless-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "image.test")
	if err := copyExecutable(exe, bin); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestEnsureRootlessChild$", "-test.v", "-test.count=1")
	cmd.Dir = dir
	cmd.Env = []string{rootlessEnv + "=1", rootlessDigestEnv + "=" + schema.Sum(data).String(), ServerEnv + "=" + srv.URL,
		"PATH=" + os.Getenv("PATH"), "HOME=" + u.HomeDir, "USER=" + name, "CI=" + os.Getenv("CI")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Logf("as %s (uid %d):\n%s", name, uid, out.String())
	if err != nil {
		t.Fatalf("rootless Ensure: %v", err)
	}
	if !bytes.Contains(out.Bytes(), []byte("--- PASS: TestEnsureRootlessChild")) {
		t.Fatal("the child test did not run")
	}
}

func TestEnsureRootlessChild(t *testing.T) {
	if os.Getenv(rootlessEnv) != "1" {
		t.Skip("run by TestEnsureRootless only")
	}
	c := NewCache(t.TempDir(), WithRetry(2, 0))
	ctx := context.Background()
	img, err := c.Ensure(ctx, mustResolve(t, "debian/bookworm"), EnsureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest.String() != os.Getenv(rootlessDigestEnv) {
		t.Errorf("digest %s, want %s", img.Digest, os.Getenv(rootlessDigestEnv))
	}
	checkSampleTree(t, img.Rootfs) // includes: owned by the caller, u+w dirs, u+r files
	su, err := os.Stat(filepath.Join(img.Rootfs, "usr/bin/su"))
	if err != nil || su.Mode()&os.ModeSetuid != 0 || su.Mode().Perm() != 0o755 {
		t.Errorf("usr/bin/su: %v %v, want 0755 without setuid for an unprivileged user", su, err)
	}
	if entries, _ := os.ReadDir(filepath.Join(img.Rootfs, "dev")); len(entries) != 0 {
		t.Errorf("dev/ holds %v", entries)
	}
	if b, err := os.ReadFile(filepath.Join(img.Rootfs, "ro/sub/deep")); err != nil || string(b) != "x" {
		t.Errorf("ro/sub/deep: %q %v", b, err)
	}
	if err := c.Verify(ctx, img.Ref.Key); err != nil {
		t.Error(err)
	}
	// The user can delete the whole tree without any chmod.
	if err := c.Remove(ctx, img.Ref.Key); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(img.Dir); !os.IsNotExist(err) {
		t.Errorf("image directory survived Remove: %v", err)
	}
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
