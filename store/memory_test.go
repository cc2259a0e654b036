package store_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/karapace/karapace/store"
)

// zeros is an endless reader of zero bytes that allocates nothing.
type zeros struct{ n int64 }

func (z *zeros) Read(p []byte) (int, error) {
	if z.n <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.n))
	clear(p[:n])
	z.n -= int64(n)
	return n, nil
}

func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLargeDataInBoundedMemory streams a 128 MiB object in and out, and packs and
// unpacks a 128 MiB file: total allocation stays a few buffers, not the data size.
func TestLargeDataInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 400 MiB to disk")
	}
	const size = 128 << 20
	const limit = 16 << 20
	ctx := context.Background()
	s := openStore(t)
	var err error
	var d [32]byte
	if n := allocated(func() { d, err = s.Objects.Put(ctx, &zeros{n: size}) }); err != nil || n > limit {
		t.Fatalf("Put of 128 MiB allocated %d bytes (err %v)", n, err)
	}
	if n := allocated(func() {
		r, e := s.Objects.Open(ctx, d)
		if e == nil {
			_, e = io.Copy(io.Discard, r)
			r.Close()
		}
		err = e
	}); err != nil || n > limit {
		t.Fatalf("Open+read of 128 MiB allocated %d bytes (err %v)", n, err)
	}
	src := t.TempDir()
	f, _ := os.Create(filepath.Join(src, "big"))
	_, _ = io.Copy(f, &zeros{n: size})
	f.Close()
	pr, pw := io.Pipe()
	dst := t.TempDir()
	if n := allocated(func() {
		go func() { pw.CloseWithError(store.Pack(ctx, src, pw, nil)) }()
		err = store.Unpack(ctx, pr, dst, store.UnpackOptions{})
	}); err != nil || n > limit {
		t.Fatalf("Pack|Unpack of 128 MiB allocated %d bytes (err %v)", n, err)
	}
	if fi, err := os.Stat(filepath.Join(dst, "big")); err != nil || fi.Size() != size {
		t.Fatalf("unpacked file: %v", err)
	}
}
