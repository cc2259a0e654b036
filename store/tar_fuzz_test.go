package store_test

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/store"
)

// FuzzUnpack feeds arbitrary bytes to Unpack: it must never panic, and never create
// anything outside its target, whatever it returns.
func FuzzUnpack(f *testing.F) {
	src := f.TempDir()
	_ = os.MkdirAll(filepath.Join(src, "d", "e"), 0o755)
	_ = os.WriteFile(filepath.Join(src, "d", "e", "f"), []byte("content"), 0o644)
	_ = os.Symlink("../d", filepath.Join(src, "d", "up"))
	var good bytes.Buffer
	if err := store.Pack(context.Background(), src, &good, nil); err != nil {
		f.Fatal(err)
	}
	f.Add(good.Bytes())
	f.Add([]byte{})
	f.Add(make([]byte, 1024))
	for _, hdrs := range [][]*tar.Header{
		{{Name: "../x", Typeflag: tar.TypeReg}},
		{{Name: "l", Typeflag: tar.TypeSymlink, Linkname: ".."}, {Name: "l/x", Typeflag: tar.TypeReg}},
		{{Name: "h", Typeflag: tar.TypeLink, Linkname: "../../etc/passwd"}},
		{{Name: "c", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hdrs {
			_ = tw.WriteHeader(h)
		}
		_ = tw.Close()
		f.Add(buf.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		target := filepath.Join(parent, "target")
		_ = store.Unpack(context.Background(), bytes.NewReader(data), target, store.UnpackOptions{Overlay: len(data)%2 == 0})
		entries, err := os.ReadDir(parent)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "target" {
				t.Fatalf("Unpack created %q outside its target", e.Name())
			}
		}
		// Let t.TempDir's cleanup remove read-only directories.
		_ = filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}
