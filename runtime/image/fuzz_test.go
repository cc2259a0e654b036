package image

import (
	"archive/tar"
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// FuzzExtract feeds arbitrary bytes to the extractor: it must never panic, never create
// anything beside its target directory, and never create a device node.
func FuzzExtract(f *testing.F) {
	f.Add(makeTar(f, sampleTree()...))
	f.Add(makeTar(f, symlink("./x", "/"), file("./x/tmp/fuzz-escape", "x")))
	f.Add(makeTar(f, dir("./a/"), symlink("./a/up", "../.."), file("./a/up/fuzz-escape", "x")))
	f.Add(makeTar(f, hardlink("./h", "../fuzz-escape"), tentry{name: "./dev/null", typ: tar.TypeChar, mode: 0o666}))
	f.Add(compressAs(f, makeTar(f, file("./etc/hostname", "h")), CompressionGzip))
	f.Add(compressAs(f, makeTar(f, file("./etc/hostname", "h")), CompressionZstd))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		dst := filepath.Join(parent, "rootfs")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		extract(context.Background(), bytes.NewReader(data), dst, quietOpts())
		entries, _ := os.ReadDir(parent)
		if len(entries) != 1 {
			t.Fatalf("extract wrote beside its target: %v", entries)
		}
		filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
				t.Errorf("special file %s created", p)
			}
			return nil
		})
	})
}
