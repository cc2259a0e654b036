package store_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/store"
)

// craft builds a tar with Go's writer (only for hostile inputs the packer never makes).
func craft(t *testing.T, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg && h.Size == 0 && h.Linkname != "" {
			// content smuggled through Linkname for brevity
			c := h.Linkname
			h.Linkname = ""
			h.Size = int64(len(c))
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte(c)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name, content string) *tar.Header {
	return &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Linkname: content}
}

// sandbox returns a target dir inside a parent whose other contents must stay untouched.
func sandbox(t *testing.T) (parent, target string) {
	parent = t.TempDir()
	target = filepath.Join(parent, "target")
	if err := os.MkdirAll(filepath.Join(parent, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(parent, "outside", "victim"), "precious", 0o644)
	return parent, target
}

func assertOutsideUntouched(t *testing.T, parent string) {
	t.Helper()
	entries, _ := os.ReadDir(parent)
	for _, e := range entries {
		if e.Name() != "target" && e.Name() != "outside" {
			t.Errorf("unpack created %s outside its target", e.Name())
		}
	}
	entries, _ = os.ReadDir(filepath.Join(parent, "outside"))
	if len(entries) != 1 {
		t.Errorf("outside dir now holds %d entries", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(parent, "outside", "victim")); string(b) != "precious" {
		t.Errorf("victim file changed to %q", b)
	}
}

func TestUnpackRefusesHostileArchives(t *testing.T) {
	tests := []struct {
		name string
		hdrs []*tar.Header
	}{
		{"dotdot", []*tar.Header{reg("../evil", "x")}},
		{"dotdot-deep", []*tar.Header{reg("a/../../outside/victim", "x")}},
		{"absolute", []*tar.Header{reg("/tmp/karapace-evil-abs", "x")}},
		{"symlink-escape-abs", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "PARENT/outside"},
			reg("link/victim", "pwned"),
		}},
		{"symlink-escape-rel", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../outside"},
			reg("link/victim", "pwned"),
		}},
		{"symlink-escape-nested", []*tar.Header{
			{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "d/up", Typeflag: tar.TypeSymlink, Linkname: "../.."},
			reg("d/up/outside/victim", "pwned"),
		}},
		{"hardlink-outside", []*tar.Header{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../outside/victim"}}},
		{"hardlink-through-symlink", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "../outside"},
			{Name: "h", Typeflag: tar.TypeLink, Linkname: "link/victim"},
		}},
		{"char-device", []*tar.Header{{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}}},
		{"block-device", []*tar.Header{{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8, Devminor: 0, Mode: 0o660}}},
		{"fifo", []*tar.Header{{Name: "pipe", Typeflag: tar.TypeFifo, Mode: 0o644}}},
		{"huge-pax-name", []*tar.Header{reg(strings.Repeat("a/", 3000)+"f", "x")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent, target := sandbox(t)
			for _, h := range tc.hdrs {
				h.Linkname = strings.ReplaceAll(h.Linkname, "PARENT", parent)
			}
			err := unpack(t, craft(t, tc.hdrs...), target, store.UnpackOptions{})
			if !errors.Is(err, store.ErrUnsafeArchive) || !errors.Is(err, store.ErrStore) {
				t.Fatalf("Unpack = %v, want ErrUnsafeArchive", err)
			}
			assertOutsideUntouched(t, parent)
		})
	}
	if _, err := os.Lstat("/tmp/karapace-evil-abs"); err == nil {
		t.Fatal("absolute entry written to /tmp")
	}
}

func TestUnpackHugeGNULongNameRejected(t *testing.T) {
	// A GNU long-name record claiming 2 GiB: the reader must refuse it, not allocate it.
	var h [512]byte
	copy(h[:], "././@LongLink")
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], "20000000000\x00")
	copy(h[136:], "00000000000\x00")
	h[156] = 'L'
	copy(h[257:], "ustar  \x00")
	copy(h[148:], "        ")
	var sum int
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:], []byte(strings.Repeat("0", 0)+octal7(sum)+"\x00"))
	archive := append(h[:], make([]byte, 4096)...)
	err := unpack(t, archive, t.TempDir(), store.UnpackOptions{})
	if !errors.Is(err, store.ErrCorrupt) {
		t.Fatalf("huge long-name record: %v, want ErrCorrupt", err)
	}
}

func octal7(v int) string {
	s := ""
	for i := 0; i < 7; i++ {
		s = string(rune('0'+v%8)) + s
		v /= 8
	}
	return s
}

func TestUnpackNeverWritesThroughExistingSymlink(t *testing.T) {
	parent, target := sandbox(t)
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(parent, "outside", "victim"), filepath.Join(target, "f")); err != nil {
		t.Fatal(err)
	}
	if err := unpack(t, craft(t, reg("f", "new")), target, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "f")); string(b) != "new" {
		t.Fatalf("f = %q", b)
	}
	if fi, _ := os.Lstat(filepath.Join(target, "f")); fi.Mode()&os.ModeSymlink != 0 {
		t.Fatal("f is still a symlink")
	}
	assertOutsideUntouched(t, parent)
}

func TestUnpackSymlinkTargetsAreNotRestricted(t *testing.T) {
	_, target := sandbox(t)
	if err := unpack(t, craft(t, &tar.Header{Name: "etc-link", Typeflag: tar.TypeSymlink, Linkname: "/etc"}), target, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(filepath.Join(target, "etc-link")); l != "/etc" {
		t.Fatalf("link %q", l)
	}
}

func TestUnpackHardLinkInside(t *testing.T) {
	_, target := sandbox(t)
	archive := craft(t, reg("a", "shared"), &tar.Header{Name: "b", Typeflag: tar.TypeLink, Linkname: "a"})
	if err := unpack(t, archive, target, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "b")); string(b) != "shared" {
		t.Fatalf("b = %q", b)
	}
}
