package store

import (
	"context"
	"io"
	"os"
)

// writeBehindStep is how much a WriteBehind writer lets accumulate before it asks the
// kernel to start writing it back.
const writeBehindStep = 8 << 20

// WriteBehind returns a writer to f that has the kernel start writing the file back to
// disk every 8 MiB as it is written (on Linux, sync_file_range with
// SYNC_FILE_RANGE_WRITE, which does not wait for the disk). The disk then works while
// the data is still being produced, and the fsync that ends a large write waits for the
// last few MiB instead of the whole file. Durability is unchanged: only that fsync
// guarantees it. Writes go to f at its current offset, which should be 0.
func WriteBehind(f *os.File) io.Writer { return &writeBehind{f: f} }

type writeBehind struct {
	f              *os.File
	written, asked int64
}

func (w *writeBehind) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	w.written += int64(n)
	if w.written-w.asked >= writeBehindStep {
		startWriteback(w.f, w.asked, w.written-w.asked)
		w.asked = w.written
	}
	return n, err
}

// CopyPipelined copies r to w, reading on the calling goroutine and writing on another,
// through at most four 1 MiB chunks: a reader with work of its own per byte (a socket,
// a verifying hash) and a writer that is slow (a file) overlap on two cores instead of
// taking turns. It returns the number of bytes read and the first error of either side;
// w has received every chunk read when it returns without error.
func CopyPipelined(ctx context.Context, w io.Writer, r io.Reader) (int64, error) {
	p := newChunkPipe(ctx, w)
	_, err := p.ReadFrom(r)
	n, cerr := p.Close()
	if err == nil {
		err = cerr
	}
	return n, err
}
