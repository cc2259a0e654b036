package store_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// requireRoot skips outside CI and fails inside it when the test cannot run.
func requireReal(t *testing.T, ok bool, why string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but %s", why)
	}
	t.Skipf("SKIPPING (not in CI): %s", why)
}

func mknodWhiteout(t *testing.T, p string) {
	t.Helper()
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		requireReal(t, false, "cannot create a 0/0 whiteout device: "+err.Error())
	}
}

func isWhiteout(p string) bool {
	var st unix.Stat_t
	return unix.Lstat(p, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func TestPackEncodesWhiteoutsAndOpaqueDirs(t *testing.T) {
	upper := t.TempDir()
	mknodWhiteout(t, filepath.Join(upper, "deleted.txt"))
	if err := os.Mkdir(filepath.Join(upper, "opq"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(upper, "opq", "new"), "n", 0o644)
	if err := unix.Setxattr(filepath.Join(upper, "opq"), "user.overlay.opaque", []byte("y"), 0); err != nil {
		requireReal(t, false, "cannot set user xattrs here: "+err.Error())
	}
	archive := pack(t, upper)
	names := listNames(archive)
	want := []string{".wh.deleted.txt", "opq/", "opq/.wh..wh..opq", "opq/new"}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("entries %q, want %q", names, want)
	}

	// Plain unpack (the original's behaviour): marker files stay files.
	plain := t.TempDir()
	if err := unpack(t, archive, plain, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(plain, ".wh.deleted.txt")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("plain unpack: .wh.deleted.txt %v", err)
	}

	// Overlay unpack: kernel form again, and the archive round-trips byte for byte.
	over := t.TempDir()
	if err := unpack(t, archive, over, store.UnpackOptions{Overlay: true}); err != nil {
		t.Fatal(err)
	}
	if !isWhiteout(filepath.Join(over, "deleted.txt")) {
		t.Fatal("overlay unpack did not recreate the 0/0 whiteout")
	}
	if _, err := os.Lstat(filepath.Join(over, ".wh.deleted.txt")); err == nil {
		t.Fatal("overlay unpack left the .wh. file as well")
	}
	buf := make([]byte, 4)
	if n, err := unix.Lgetxattr(filepath.Join(over, "opq"), "user.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Fatalf("opaque xattr not restored: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(over, "opq", ".wh..wh..opq")); err == nil {
		t.Fatal("opaque marker file left beside the xattr")
	}
	if again := pack(t, over); !bytes.Equal(again, archive) {
		t.Fatalf("overlay round trip changed the archive: %q", listNames(again))
	}
}

// TestWhiteoutSurvivesCommitAndRestoreInRealOverlay mounts kernel overlayfs over a
// restored upper dir and checks that a file deleted before the commit stays deleted.
func TestWhiteoutSurvivesCommitAndRestoreInRealOverlay(t *testing.T) {
	requireReal(t, os.Geteuid() == 0, "mounting overlayfs needs root")
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(lower, "keep.txt"), "k", 0o644)
	writeFile(t, filepath.Join(lower, "gone.txt"), "g", 0o644)
	writeFile(t, filepath.Join(lower, "dir", "old"), "o", 0o644)
	mount := func(up string) {
		t.Helper()
		opts := "lowerdir=" + lower + ",upperdir=" + up + ",workdir=" + work
		if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
			requireReal(t, false, "overlayfs mount failed: "+err.Error())
		}
	}
	umount := func() {
		if err := unix.Unmount(merged, 0); err != nil {
			t.Fatalf("unmount %s: %v", merged, err)
		}
	}
	mount(upper)
	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })
	// The user's session: delete a file, replace a directory wholesale.
	if err := os.Remove(filepath.Join(merged, "gone.txt")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(merged, "dir")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(merged, "dir", "new"), "n", 0o644)
	umount()

	var archive bytes.Buffer
	if err := store.Pack(context.Background(), upper, &archive, nil); err != nil {
		t.Fatal(err)
	}
	restored := filepath.Join(base, "restored")
	if err := store.Unpack(context.Background(), bytes.NewReader(archive.Bytes()), restored, store.UnpackOptions{Overlay: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(work); err != nil {
		t.Fatal(err)
	}
	_ = os.Mkdir(work, 0o755)
	mount(restored)
	defer umount()
	if _, err := os.Lstat(filepath.Join(merged, "gone.txt")); err == nil {
		t.Fatal("deleted file is back after restore")
	}
	if _, err := os.Lstat(filepath.Join(merged, "dir", "old")); err == nil {
		t.Fatal("opaque directory shows the lower's old content after restore")
	}
	if b, _ := os.ReadFile(filepath.Join(merged, "dir", "new")); string(b) != "n" {
		t.Fatal("new file missing after restore")
	}
	if b, _ := os.ReadFile(filepath.Join(merged, "keep.txt")); string(b) != "k" {
		t.Fatal("untouched lower file missing")
	}
}

func listNames(archive []byte) []string {
	var names []string
	var long string
	for off := 0; off+512 <= len(archive); {
		h := archive[off : off+512]
		off += 512
		if h[0] == 0 {
			continue
		}
		var size int64
		for _, c := range bytes.TrimRight(h[124:136], "\x00 ") {
			size = size*8 + int64(c-'0')
		}
		name := string(bytes.TrimRight(h[:100], "\x00"))
		if h[156] == 'L' {
			long = string(bytes.TrimRight(archive[off:off+int(size)], "\x00"))
		} else if h[156] != 'K' {
			if long != "" {
				name, long = long, ""
			}
			names = append(names, name)
		}
		off += int((size + 511) / 512 * 512)
	}
	return names
}

func TestPackLongNamesListWithGNUTar(t *testing.T) {
	_, err := exec.LookPath("tar")
	requireReal(t, err == nil, "GNU tar not installed")
	src := t.TempDir()
	longDir := strings.Repeat("d", 60) + "/" + strings.Repeat("e", 60)
	longFile := longDir + "/" + strings.Repeat("f", 90) + ".txt"
	writeFile(t, filepath.Join(src, longFile), "long", 0o640)
	longTarget := "/" + strings.Repeat("t", 50) + "/" + strings.Repeat("u", 80)
	if err := os.Symlink(longTarget, filepath.Join(src, "ln")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("./a//b/./c/", filepath.Join(src, "odd")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "exactly100_"+strings.Repeat("x", 89)), "x", 0o644)
	archive := pack(t, src)
	f := filepath.Join(t.TempDir(), "a.tar")
	if err := os.WriteFile(f, archive, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tar", "-tvf", f).CombinedOutput()
	if err != nil {
		t.Fatalf("tar -tvf: %v\n%s", err, out)
	}
	listing := string(out)
	for _, want := range []string{longFile, longDir + "/", "ln -> " + longTarget, "odd -> ./a/b/c/", "-rw-r-----", "exactly100_"} {
		if !strings.Contains(listing, want) {
			t.Errorf("tar -tvf listing lacks %q:\n%s", want, listing)
		}
	}
	if strings.Contains(listing, "warning") || strings.Contains(listing, "error") {
		t.Errorf("tar complained:\n%s", listing)
	}
	// GNU tar extracts it identically to our unpacker.
	gnu, ours := t.TempDir(), t.TempDir()
	if out, err := exec.Command("tar", "-xf", f, "-C", gnu).CombinedOutput(); err != nil {
		t.Fatalf("tar -xf: %v\n%s", err, out)
	}
	if err := unpack(t, archive, ours, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if schema.Sum(pack(t, gnu)) != schema.Sum(archive) || schema.Sum(pack(t, ours)) != schema.Sum(archive) {
		t.Fatal("trees extracted by GNU tar and by Unpack do not repack to the same archive")
	}
	if b, err := os.ReadFile(filepath.Join(ours, longFile)); err != nil || string(b) != "long" {
		t.Fatalf("long file after unpack: %v", err)
	}
}

func TestPackLongNameHeaderBytes(t *testing.T) {
	src := t.TempDir()
	name := strings.Repeat("n", 120)
	writeFile(t, filepath.Join(src, name), "", 0o644)
	a := pack(t, src)
	if string(a[:13]) != "././@LongLink" || a[156] != 'L' || string(a[100:108]) != "0000644\x00" || string(a[124:136]) != "00000000171\x00" {
		t.Fatalf("bad long-name record header")
	}
	if string(a[512:512+121]) != name+"\x00" {
		t.Fatal("long-name record content")
	}
	if string(a[1024:1124]) != name[:100] || a[1024+156] != '0' {
		t.Fatal("real header does not hold the first 100 bytes of the name")
	}
	if len(a) != 512*3+1024 {
		t.Fatalf("archive length %d", len(a))
	}

	// A long symlink target: K record, then a header whose linkname keeps the
	// components that fit before the direct write failed, as the original's does.
	src = t.TempDir()
	target := "/" + strings.Repeat("t", 50) + "/" + strings.Repeat("u", 80)
	if err := os.Symlink(target, filepath.Join(src, "ln")); err != nil {
		t.Fatal(err)
	}
	a = pack(t, src)
	if a[156] != 'K' || string(a[512:512+len(target)+1]) != target+"\x00" {
		t.Fatal("bad long-link record")
	}
	h := a[1024:1536]
	if h[156] != '2' || string(h[157:157+52]) != "/"+strings.Repeat("t", 50)+"/" || h[157+52] != 0 {
		t.Fatalf("symlink header linkname %q", h[157:257])
	}
}
