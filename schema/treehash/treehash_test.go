package treehash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	zeebo "github.com/zeebo/blake3"

	"github.com/karapace/karapace/schema"
)

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	s[1] = byte(seed >> 8)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

func want(b []byte) schema.Digest { return schema.Digest(zeebo.Sum256(b)) }

// checkSum compares sum over data[:n] with zeebo for one configuration.
func checkSum(t *testing.T, data []byte, n int, c config, name string) {
	t.Helper()
	got, err := sum(context.Background(), bytes.NewReader(data[:n]), int64(n), c)
	if err != nil {
		t.Fatalf("%s: length %d: %v", name, n, err)
	}
	if w := want(data[:n]); got != w {
		t.Fatalf("%s: length %d (span %d, %d workers): got %s, want %s", name, n, c.span, c.workers, got, w)
	}
}

// dedupe sorts lengths and drops duplicates and those outside [0, limit].
func dedupe(ls []int, limit int) []int {
	sort.Ints(ls)
	var out []int
	for i, l := range ls {
		if l >= 0 && l <= limit && (i == 0 || l != ls[i-1]) {
			out = append(out, l)
		}
	}
	return out
}

// edgeLengths is every length from `from` to 3 KiB + 1, and the lengths around chunk
// counts near powers of two up to 4097 chunks, sorted, without repeats, at most limit.
func edgeLengths(from, limit int) []int {
	var ls []int
	for n := from; n <= 3*1024+1; n++ {
		ls = append(ls, n)
	}
	for n := 1; n <= 4096; n *= 2 {
		for _, m := range []int{n - 1, n, n + 1} {
			ls = append(ls, m*1024-1, m*1024, m*1024+1)
		}
	}
	return dedupe(ls, limit)
}

// TestKernelsAgree: every kernel gives the same CV as the others for every length up to
// 3 KiB + 1 byte, around chunk counts that are powers of two, and at chunk counters that
// cross 2^32 inside one group of eight chunks (the counter's high word).
func TestKernelsAgree(t *testing.T) {
	ks := testKernels(t)
	data := randomBytes(4100*1024, 1)
	lengths := edgeLengths(1, len(data))
	scratch := make([]byte, scratchSize(len(data)))
	for _, counter := range []uint64{0, 5, 1<<32 - 3, 1<<40 + 7} {
		for _, n := range lengths {
			ref := gutsCV(data[:n], counter)
			for name, k := range ks {
				if got := k(data[:n], counter, scratch); got != ref {
					t.Fatalf("kernel %s, length %d, counter %d: got %x, guts %x", name, n, counter, got, ref)
				}
			}
		}
	}
}

// TestSumSmallSpans: the parallel tree with tiny spans against zeebo, for every length
// up to 3 KiB + 1 and around powers of two of chunks, with each kernel.
func TestSumSmallSpans(t *testing.T) {
	data := randomBytes(4100*1024, 2)
	lengths := edgeLengths(0, len(data))
	for name, k := range testKernels(t) {
		for _, span := range []int{1024, 2048, 16 << 10, 64 << 10} {
			for _, n := range lengths {
				if n > 64*span && n > 3*1024+1 {
					continue // thousands of spans add nothing but time
				}
				checkSum(t, data, n, config{span: span, workers: 1 + n%3, kern: k}, name)
			}
		}
	}
}

// TestSumSpanEdges: lengths around each of the first span boundaries with the real span
// size, with 1, 2 and 8 workers and each kernel.
func TestSumSpanEdges(t *testing.T) {
	data := randomBytes(9*spanSize+2, 3)
	var lengths []int
	for k := 1; k <= 9; k++ {
		lengths = append(lengths, k*spanSize-1, k*spanSize, k*spanSize+1)
	}
	lengths = append(lengths, 4*spanSize+1024, 4*spanSize+1023, 5*spanSize-1024, 7*spanSize+64)
	for name, k := range testKernels(t) {
		for _, workers := range []int{1, 2, 8} {
			for _, n := range dedupe(lengths, len(data)) {
				checkSum(t, data, n, config{span: spanSize, workers: workers, kern: k}, name)
			}
		}
	}
}

// TestSumRandom: random lengths up to 64 MiB (8 MiB with -short) through SumReaderAt, with
// GOMAXPROCS at 1, 2 and 8.
func TestSumRandom(t *testing.T) {
	limit := 64 << 20
	if testing.Short() {
		limit = 8 << 20
	}
	data := randomBytes(limit, 4)
	rng := rand.New(rand.NewPCG(4, 4))
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 2, 8} {
		runtime.GOMAXPROCS(procs)
		for _, n := range []int{rng.IntN(limit + 1), MinSize + rng.IntN(limit-MinSize+1), limit} {
			got, err := SumReaderAt(context.Background(), bytes.NewReader(data), int64(n))
			if err != nil {
				t.Fatal(err)
			}
			if w := want(data[:n]); got != w {
				t.Fatalf("GOMAXPROCS %d, length %d: got %s, want %s", procs, n, got, w)
			}
		}
	}
}

// TestSumVectorInput: the official BLAKE3 test vectors' input (byte i is i mod 251) at
// their lengths, checked against zeebo; and the empty input's published digest.
func TestSumVectorInput(t *testing.T) {
	lengths := []int{0, 1, 1023, 1024, 1025, 2048, 2049, 3072, 3073, 4096, 4097, 5120, 5121,
		6144, 6145, 7168, 7169, 8192, 8193, 16384, 31744, 102400}
	data := make([]byte, 102400)
	for i := range data {
		data[i] = byte(i % 251)
	}
	for name, k := range testKernels(t) {
		for _, span := range []int{1024, 4096} {
			for _, n := range lengths {
				checkSum(t, data, n, config{span: span, workers: 2, kern: k}, name)
			}
		}
	}
	got, err := SumReaderAt(context.Background(), bytes.NewReader(nil), 0)
	if err != nil || got.String() != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("empty input: %s, %v", got, err)
	}
}

// TestSumFile: a real file, hashed whole and by a prefix.
func TestSumFile(t *testing.T) {
	data := randomBytes(3*spanSize+MinSize+12345, 5)
	f := tempFile(t, data, os.O_RDONLY)
	for _, n := range []int{len(data), len(data) - 1, MinSize, 100} {
		got, err := SumFile(context.Background(), f, int64(n))
		if err != nil {
			t.Fatal(err)
		}
		if w := want(data[:n]); got != w {
			t.Fatalf("length %d: got %s, want %s", n, got, w)
		}
	}
}

// tempFile writes data to a new file in a temp dir and opens it with flag; the test's
// end closes it.
func tempFile(t *testing.T, data []byte, flag int) *os.File {
	t.Helper()
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// truncatingReader truncates its file to cut bytes when the first read is made.
// Workers call it concurrently: every read waits for the truncation.
type truncatingReader struct {
	f    *os.File
	cut  int64
	once sync.Once
	err  error
}

func (r *truncatingReader) ReadAt(p []byte, off int64) (int, error) {
	r.once.Do(func() { r.err = r.f.Truncate(r.cut) })
	if r.err != nil {
		return 0, r.err
	}
	return r.f.ReadAt(p, off)
}

// TestSumTruncated: a file that shrinks while it is hashed gives ErrSizeChanged, on the
// parallel and on the serial path; one truncated by another goroutine at a random moment
// gives either that error or the digest of the whole content.
func TestSumTruncated(t *testing.T) {
	data := randomBytes(32<<20, 6)
	for _, c := range []config{defaultConfig(), {span: spanSize, workers: 2, kern: gutsKernel}, {span: spanSize, workers: 1, min: 1 << 40}} {
		f := tempFile(t, data, os.O_RDWR)
		_, err := sum(context.Background(), &truncatingReader{f: f, cut: 5 << 20}, int64(len(data)), c)
		if !errors.Is(err, ErrSizeChanged) {
			t.Fatalf("workers %d: got %v, want ErrSizeChanged", c.workers, err)
		}
	}
	path := filepath.Join(t.TempDir(), "g")
	for round := range 5 {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- os.Truncate(path, int64(round)<<20) }()
		got, err := SumFile(context.Background(), f, int64(len(data)))
		f.Close()
		if terr := <-done; terr != nil {
			t.Fatal(terr)
		}
		if err == nil && got != want(data) || err != nil && !errors.Is(err, ErrSizeChanged) {
			t.Fatalf("round %d: got %s, %v", round, got, err)
		}
	}
}

// TestSumCancel: a cancelled context stops the hash with its error, and no goroutine is
// left behind.
func TestSumCancel(t *testing.T) {
	data := randomBytes(64<<20, 7)
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := SumReaderAt(ctx, bytes.NewReader(data), int64(len(data))); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	for _, workers := range []int{1, 2, 8} {
		ctx, cancel := context.WithCancel(context.Background())
		r := &slowReader{r: bytes.NewReader(data), after: 3, cancel: cancel}
		_, err := sum(ctx, r, int64(len(data)), config{span: spanSize, workers: workers, kern: defaultKernel()})
		cancel()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%d workers: cancelled during: %v", workers, err)
		}
	}
	// A worker calls wg.Done just before it exits: give the last ones a moment.
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before, %d after", before, after)
	}
}

// slowReader calls cancel once it has served `after` reads.
type slowReader struct {
	r      io.ReaderAt
	after  int64
	served atomic.Int64
	cancel context.CancelFunc
}

func (s *slowReader) ReadAt(p []byte, off int64) (int, error) {
	if s.served.Add(1) == s.after {
		s.cancel()
	}
	return s.r.ReadAt(p, off)
}

// TestSumReadError: a read error is returned wrapped, on both paths.
func TestSumReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	r := errReader{err: boom, from: 2 * spanSize}
	for _, c := range []config{defaultConfig(), {span: spanSize, workers: 1, min: 1 << 40}} {
		_, err := sum(context.Background(), r, 8*spanSize, c)
		if !errors.Is(err, boom) {
			t.Fatalf("got %v", err)
		}
	}
	if _, err := SumReaderAt(context.Background(), r, -1); err == nil {
		t.Fatal("negative size accepted")
	}
}

// errReader serves zeros before offset from and fails from there.
type errReader struct {
	err  error
	from int64
}

func (e errReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > e.from {
		return 0, fmt.Errorf("pread: %w", e.err)
	}
	clear(p)
	return len(p), nil
}

// FuzzSum: any content, span and worker count hashes as zeebo does.
func FuzzSum(f *testing.F) {
	f.Add([]byte("hello"), uint8(0), uint8(2))
	f.Add(bytes.Repeat([]byte{7}, 5000), uint8(1), uint8(3))
	ks := testKernels(f)
	names := make([]string, 0, len(ks))
	for n := range ks {
		names = append(names, n)
	}
	sort.Strings(names)
	f.Fuzz(func(t *testing.T, data []byte, spanExp, workers uint8) {
		name := names[int(workers)%len(names)]
		c := config{span: 1024 << (spanExp % 5), workers: 1 + int(workers%8), kern: ks[name]}
		checkSum(t, data, len(data), c, name)
	})
}

// TestSumMappedFault: a file truncated while SumFile has it mapped faults (SIGBUS) on
// the pages past its new end. The fault is an error of that attempt, not the end of the
// process, and SumFile then reports the short file as ErrSizeChanged.
func TestSumMappedFault(t *testing.T) {
	data := randomBytes(3*mapWindow/2, 10)
	f := tempFile(t, data, os.O_RDWR)
	size := int64(len(data))
	for _, c := range []config{defaultConfig(), {span: spanSize, workers: 1, kern: gutsKernel, min: MinSize}} {
		if d, err := sum(context.Background(), &fileMap{fd: int(f.Fd())}, size, c); err != nil || d != want(data) {
			t.Fatalf("mapped, whole, %d workers: %s, %v", c.workers, d, err)
		}
	}
	// The first window is whole; the second faults at its first span past the end. And
	// a truncation inside the first window faults there.
	for _, cut := range []int64{mapWindow + 5<<20, 5 << 20} {
		if err := f.Truncate(cut); err != nil {
			t.Fatal(err)
		}
		for _, c := range []config{defaultConfig(), {span: spanSize, workers: 1, kern: gutsKernel, min: MinSize}} {
			if _, err := sum(context.Background(), &fileMap{fd: int(f.Fd())}, size, c); !errors.Is(err, errFault) {
				t.Fatalf("cut at %d, %d workers: got %v, want errFault", cut, c.workers, err)
			}
		}
		if _, err := SumFile(context.Background(), f, size); !errors.Is(err, ErrSizeChanged) {
			t.Fatalf("SumFile, cut at %d: got %v, want ErrSizeChanged", cut, err)
		}
	}
}
