package treehash

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
)

// BenchmarkKernel: one core hashing 1 MiB spans from memory, per kernel, next to zeebo
// (schema.Sum) on the same bytes. GB/s is the MB/s column divided by 1000.
func BenchmarkKernel(b *testing.B) {
	data := randomBytes(spanSize, 8)
	scratch := make([]byte, scratchSize(len(data)))
	ks := testKernels(b)
	names := make([]string, 0, len(ks))
	for n := range ks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		k := ks[name]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for range b.N {
				k(data, 0, scratch)
			}
		})
	}
	b.Run("zeebo", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for range b.N {
			schema.Sum(data)
		}
	})
}

// BenchmarkSumFile: a 256 MiB file in the page cache, hashed by SumFile (mapped, all
// cores), by the tree read with pread (all cores, several span sizes; one worker), by
// zeebo streaming (schema.HashReader, the old verify path),
// and by b3sum with all threads and with one, when b3sum is installed. x_b3sum is the
// time over b3sum's (all threads); below 1.25 means at least 0.8x of its speed.
func BenchmarkSumFile(b *testing.B) {
	const size = 256 << 20
	path := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(path, randomBytes(size, 9), 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	ctx := context.Background()
	peer := time.Duration(0)
	if _, err := exec.LookPath("b3sum"); err == nil {
		peer = medianRun(b, "b3sum", path)
	} else {
		b.Logf("WARNING: b3sum not installed: no ratios")
	}
	ratio := func(b *testing.B) {
		if peer > 0 {
			b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(peer), "x_b3sum")
		}
	}
	b.Run("treehash", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			if _, err := SumFile(ctx, f, size); err != nil {
				b.Fatal(err)
			}
		}
		ratio(b)
	})
	for _, span := range []int{128 << 10, 256 << 10, 512 << 10, 1 << 20, 2 << 20} {
		b.Run("treehash-pread-span-"+strconv.Itoa(span>>10)+"k", func(b *testing.B) {
			c := defaultConfig()
			c.span = span
			b.SetBytes(size)
			for range b.N {
				if _, err := sum(ctx, f, size, c); err != nil {
					b.Fatal(err)
				}
			}
			ratio(b)
		})
	}
	b.Run("treehash-pread-1worker", func(b *testing.B) {
		c := defaultConfig()
		c.workers, c.min = 1, 0
		b.SetBytes(size)
		for range b.N {
			if _, err := sum(ctx, f, size, c); err != nil {
				b.Fatal(err)
			}
		}
		ratio(b)
	})
	b.Run("zeebo-stream", func(b *testing.B) {
		b.SetBytes(size)
		for range b.N {
			if _, err := f.Seek(0, 0); err != nil {
				b.Fatal(err)
			}
			if _, _, err := schema.HashReader(f); err != nil {
				b.Fatal(err)
			}
		}
		ratio(b)
	})
	if peer == 0 {
		return
	}
	for _, threads := range []int{0, 1} {
		b.Run("b3sum-threads-"+strconv.Itoa(threads), func(b *testing.B) {
			args := []string{path}
			if threads > 0 {
				args = []string{"--num-threads", strconv.Itoa(threads), path}
			}
			b.SetBytes(size)
			for range b.N {
				if out, err := exec.Command("b3sum", args...).CombinedOutput(); err != nil {
					b.Fatal(err, string(out))
				}
			}
			ratio(b)
		})
	}
}

// medianRun is the median wall time of five runs of a command.
func medianRun(b *testing.B, name string, args ...string) time.Duration {
	var ts []time.Duration
	for range 5 {
		start := time.Now()
		var out bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			b.Fatal(err, out.String())
		}
		ts = append(ts, time.Since(start))
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	return ts[2]
}
