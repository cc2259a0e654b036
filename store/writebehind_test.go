package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/karapace/karapace/store"
)

// TestWriteBehind: writes of every size through WriteBehind, across many of its 8 MiB
// steps, leave exactly the bytes written in the file, and a file it started writing back
// is fsynced as usual.
func TestWriteBehind(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	data := make([]byte, 37<<20+123)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := store.WriteBehind(f)
	for off := 0; off < len(data); {
		k := min(len(data)-off, 1+rng.IntN(3<<20))
		n, err := w.Write(data[off : off+k])
		if err != nil || n != k {
			t.Fatalf("write of %d bytes at %d: %d, %v", k, off, n, err)
		}
		off += k
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes that differ from the %d written", len(got), len(data))
	}
}

// failingWriter fails its write number n (counting from 1).
type failingWriter struct {
	n, calls int
	buf      bytes.Buffer
}

func (w *failingWriter) Write(p []byte) (int, error) {
	w.calls++
	if w.calls == w.n {
		return 0, errWrite
	}
	return w.buf.Write(p)
}

var errWrite = errors.New("disk on fire")

// TestCopyPipelined: the writer receives every byte in order; an error of the reader or
// of the writer is what the copy returns, and the copy stops.
func TestCopyPipelined(t *testing.T) {
	data := make([]byte, 9<<20+77)
	for i := range data {
		data[i] = byte(i * 7)
	}
	ctx := context.Background()
	var out bytes.Buffer
	n, err := store.CopyPipelined(ctx, &out, iotest.HalfReader(bytes.NewReader(data)))
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("copy: %d bytes, %v; equal %v", n, err, bytes.Equal(out.Bytes(), data))
	}
	errRead := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(data[:3<<20]), iotest.ErrReader(errRead))
	if _, err := store.CopyPipelined(ctx, io.Discard, r); !errors.Is(err, errRead) {
		t.Fatalf("reader error: got %v", err)
	}
	w := &failingWriter{n: 2}
	if _, err := store.CopyPipelined(ctx, w, bytes.NewReader(data)); !errors.Is(err, errWrite) {
		t.Fatalf("writer error: got %v", err)
	}
	if w.buf.Len() != 1<<20 {
		t.Fatalf("after a failed write the writer got %d more bytes", w.buf.Len()-1<<20)
	}
}
