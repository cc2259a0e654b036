package treehash

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/karapace/karapace/schema"
)

// ErrSizeChanged is wrapped by the error of a hash whose input ended before the size it
// was given: a file truncated while being hashed.
var ErrSizeChanged = errors.New("content ended before its size")

// errFault is wrapped by the error of a hash whose mapped input faulted.
var errFault = errors.New("fault reading the mapped file")

// mapWindow is how much of a file SumFile maps at a time. Mapped pages count in the
// process's resident set while they are mapped: a window bounds that, and costs a
// mapping and the workers' rendezvous per window.
const mapWindow = 64 << 20

// fileMap is a file hashed through windows of it mapped in turn: workers hash spans of
// the current window in place.
type fileMap struct {
	fd   int
	base int64  // file offset of data[0]
	data []byte // the current window, nil between windows
}

// ReadAt preads the file (for callers other than the workers).
func (m *fileMap) ReadAt(p []byte, off int64) (int, error) {
	n, err := syscall.Pread(m.fd, p, off)
	if err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// mapRange maps bytes [off, end) of the file, off a multiple of the page size.
func (m *fileMap) mapRange(off, end int64) error {
	data, err := syscall.Mmap(m.fd, off, int(end-off), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("hash: %w: map %d bytes at offset %d: %v", errFault, end-off, off, err)
	}
	m.base, m.data = off, data
	return nil
}

func (m *fileMap) unmap() error {
	data := m.data
	m.data = nil
	if err := syscall.Munmap(data); err != nil {
		return fmt.Errorf("hash: unmap: %w", err)
	}
	return nil
}

// MinSize is the size from which SumReaderAt hashes on several cores. Below it, starting
// workers costs more than it saves.
const MinSize = 4 << 20

const (
	// spanSize is what one worker reads and hashes at a time: a whole aligned subtree of
	// BLAKE3 (a power of two of chunks).
	spanSize = 1 << 20
	// windowSpans bounds the CVs held at once; workers synchronize once per window.
	windowSpans = 1024
)

// config is SumReaderAt's parameters; tests vary them.
type config struct {
	span    int    // bytes per span: a power of two, at least 1 KiB
	workers int    // goroutines hashing spans
	kern    kernel // computes a span's CV
	min     int64  // smaller inputs are hashed on the calling goroutine
}

func defaultConfig() config {
	return config{span: spanSize, workers: runtime.GOMAXPROCS(0), kern: defaultKernel(), min: MinSize}
}

// SumFile hashes the first size bytes of f. From MinSize on it maps the file and the
// workers hash the page cache in place, with no copy; a fault while reading the mapping
// (an I/O error, or a file shrunk under it) ends that attempt, and the file is then
// hashed again with pread (see SumReaderAt), which reports the cause as an error.
func SumFile(ctx context.Context, f *os.File, size int64) (schema.Digest, error) {
	if size < MinSize {
		return SumReaderAt(ctx, f, size)
	}
	d, err := sum(ctx, &fileMap{fd: int(f.Fd())}, size, defaultConfig())
	runtime.KeepAlive(f) // its finalizer would close the descriptor
	if errors.Is(err, errFault) {
		return SumReaderAt(ctx, f, size)
	}
	return d, err
}

// SumReaderAt returns the BLAKE3-256 digest of the first size bytes of r. From MinSize
// on, it hashes on up to GOMAXPROCS goroutines, all of which have returned when it does.
// Content shorter than size gives an error matching ErrSizeChanged; a cancelled ctx
// stops the hash with ctx's error.
func SumReaderAt(ctx context.Context, r io.ReaderAt, size int64) (schema.Digest, error) {
	return sum(ctx, r, size, defaultConfig())
}

func sum(ctx context.Context, r io.ReaderAt, size int64, c config) (schema.Digest, error) {
	if err := ctx.Err(); err != nil {
		return schema.Digest{}, err
	}
	if size < 0 {
		return schema.Digest{}, fmt.Errorf("hash: negative size %d", size)
	}
	span := int64(c.span)
	fm, mapped := r.(*fileMap)
	if size <= span || size < c.min || c.workers < 2 && c.min > 0 && !mapped {
		return sumSerial(ctx, r, size)
	}
	// Every span but the last is a complete subtree pushed on the CV stack; the last
	// (1 to span bytes) stays out of the stack so that it is never merged with a left
	// neighbour as an equal: it belongs to the root's right spine.
	spans := (size + span - 1) / span
	ws := make([]worker, min(int64(max(c.workers, 1)), spans))
	for i := range ws {
		ws[i] = worker{scratch: make([]byte, scratchSize(c.span))}
		if !mapped {
			ws[i].buf = make([]byte, span)
		}
	}
	window := int64(windowSpans)
	if mapped {
		window = max(mapWindow/span, 1)
	}
	cvs := make([][8]uint32, min(spans, window))
	var stack [][8]uint32
	var last [8]uint32
	for w0 := int64(0); w0 < spans; w0 += window {
		w1 := min(w0+window, spans)
		if mapped {
			if err := fm.mapRange(w0*span, min(w1*span, size)); err != nil {
				return schema.Digest{}, err
			}
		}
		err := hashWindow(ctx, r, size, c, w0, w1, cvs, ws)
		if mapped {
			if uerr := fm.unmap(); err == nil {
				err = uerr
			}
		}
		if err != nil {
			return schema.Digest{}, err
		}
		for i := w0; i < w1; i++ {
			if i == spans-1 {
				last = cvs[i-w0]
				break
			}
			stack = push(stack, cvs[i-w0], uint64(i+1))
		}
	}
	right := last
	for j := len(stack) - 1; j >= 1; j-- {
		right = parentCV(stack[j], right)
	}
	return schema.Digest(rootDigest(stack[0], right)), nil
}

// push adds the CV of the n-th complete span (counting from 1) to the stack, first
// merging it with as many left neighbours as n has trailing zero bits: those are the
// complete subtrees of equal size that it closes.
func push(stack [][8]uint32, cv [8]uint32, n uint64) [][8]uint32 {
	for ; n&1 == 0; n >>= 1 {
		cv = parentCV(stack[len(stack)-1], cv)
		stack = stack[:len(stack)-1]
	}
	return append(stack, cv)
}

// worker is one goroutine's memory: a span's bytes and the kernel's scratch.
type worker struct {
	buf     []byte
	scratch []byte
}

// hashWindow stores in cvs[i-w0] the CV of every span i in [w0, w1), spans handed out
// one at a time to the workers. It returns the first error once every worker is done.
func hashWindow(ctx context.Context, r io.ReaderAt, size int64, c config, w0, w1 int64, cvs [][8]uint32, ws []worker) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	fail := func(err error) {
		once.Do(func() { first = err })
		cancel()
	}
	next.Store(w0)
	for k := range ws[:min(int64(len(ws)), w1-w0)] {
		w := &ws[k]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= w1 {
					return
				}
				if err := ctx.Err(); err != nil {
					fail(err)
					return
				}
				cv, err := w.hashSpan(r, size, c, i)
				if err != nil {
					fail(err)
					return
				}
				cvs[i-w0] = cv
			}
		}()
	}
	wg.Wait()
	return first
}

// hashSpan reads span i and returns its CV. A span of a mapping is hashed in place.
func (w *worker) hashSpan(r io.ReaderAt, size int64, c config, i int64) ([8]uint32, error) {
	off := i * int64(c.span)
	n := min(int64(c.span), size-off)
	if m, ok := r.(*fileMap); ok {
		return hashMapped(m.data[off-m.base:off-m.base+n], off, c, w.scratch)
	}
	b := w.buf[:n]
	got, err := r.ReadAt(b, off)
	if got < len(b) {
		if err == nil || errors.Is(err, io.EOF) {
			return [8]uint32{}, fmt.Errorf("hash: %w: %d bytes at offset %d, want %d", ErrSizeChanged, got, off, len(b))
		}
		return [8]uint32{}, fmt.Errorf("hash: read at offset %d: %w", off, err)
	}
	return c.kern(b, uint64(off)/1024, w.scratch), nil
}

// hashMapped hashes mapped bytes from offset off of the file. Reading a mapping can
// fault (SIGBUS: an I/O error, or a page beyond a file that shrank): the kernels are Go
// and Go assembly, so with SetPanicOnFault the fault is a panic on this goroutine, turned
// here into an error that wraps errFault.
func hashMapped(p []byte, off int64, c config, scratch []byte) (cv [8]uint32, err error) {
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(interface{ Addr() uintptr }); !ok {
				panic(r)
			}
			err = fmt.Errorf("hash: %w at offset %d", errFault, off)
		}
	}()
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	return c.kern(p, uint64(off)/1024, scratch), nil
}

// serialBufSize is sumSerial's read size: zeebo/blake3 runs at full speed from 1 MiB.
const serialBufSize = 1 << 20

// sumSerial hashes size bytes of r on the calling goroutine with zeebo/blake3.
func sumSerial(ctx context.Context, r io.ReaderAt, size int64) (schema.Digest, error) {
	h := schema.NewHash()
	buf := make([]byte, min(size, serialBufSize))
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return schema.Digest{}, err
		}
		b := buf[:min(int64(len(buf)), size-off)]
		n, err := r.ReadAt(b, off)
		if n < 0 || n > len(b) {
			return schema.Digest{}, fmt.Errorf("hash: read at offset %d: reader returned %d bytes for %d", off, n, len(b))
		}
		h.Write(b[:n])
		off += int64(n)
		if n < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				return schema.Digest{}, fmt.Errorf("hash: %w: %d bytes, want %d", ErrSizeChanged, off, size)
			}
			return schema.Digest{}, fmt.Errorf("hash: read at offset %d: %w", off, err)
		}
	}
	return h.Digest(), nil
}
