package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
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

// TestEnsureRootless runs Ensure, Verify and Remove as the unprivileged test user (see
// testrootfs.RootlessUser): root re-runs this test binary as that user.
func TestEnsureRootless(t *testing.T) {
	u := testrootfs.RootlessUser(t)
	data := compressAs(t, makeTar(t, rootlessTree()...), CompressionZstd)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	if err := os.WriteFile(tarball, data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball})
	cmd := u.TestBinary(t, "-test.run=^TestEnsureRootlessChild$", "-test.v", "-test.count=1")
	cmd.Env = append(cmd.Env, rootlessEnv+"=1", rootlessDigestEnv+"="+schema.Sum(data).String(), ServerEnv+"="+srv.URL)
	out, err := cmd.CombinedOutput()
	t.Logf("as %s (uid %d):\n%s", u.Name, u.UID, out)
	if err != nil {
		t.Fatalf("rootless Ensure: %v", err)
	}
	if !bytes.Contains(out, []byte("--- PASS: TestEnsureRootlessChild")) {
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
