package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
)

// benchTree is 2000 files of 16 KiB in 40 directories (32 MiB), the shape of a small
// rootfs.
func benchTree(b *testing.B) ([]byte, int64) {
	b.Helper()
	var entries []tentry
	body := strings.Repeat("karapace", 2048)
	for d := 0; d < 40; d++ {
		entries = append(entries, dir(fmt.Sprintf("./usr/share/d%02d/", d)))
		for f := 0; f < 50; f++ {
			entries = append(entries, file(fmt.Sprintf("./usr/share/d%02d/f%03d", d, f), body))
		}
	}
	return makeTar(b, entries...), int64(2000 * len(body))
}

func BenchmarkExtract(b *testing.B) {
	raw, size := benchTree(b)
	for _, c := range []Compression{CompressionNone, CompressionZstd, CompressionGzip} {
		data := compressAs(b, raw, c)
		b.Run(string(c), func(b *testing.B) {
			b.SetBytes(size)
			for b.Loop() {
				dst, err := os.MkdirTemp(b.TempDir(), "x")
				if err != nil {
					b.Fatal(err)
				}
				if _, err := extract(context.Background(), bytes.NewReader(data), dst, quietOpts()); err != nil {
					b.Fatal(err)
				}
				os.RemoveAll(dst)
			}
		})
	}
}

func BenchmarkTreeDigest(b *testing.B) {
	raw, size := benchTree(b)
	dst := b.TempDir()
	if _, err := extract(context.Background(), bytes.NewReader(raw), dst, quietOpts()); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	for b.Loop() {
		if _, err := TreeDigest(context.Background(), dst); err != nil {
			b.Fatal(err)
		}
	}
}
