package store_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Benchmarks compare with the tools a user would reach for on the same bytes, and
// report the ratio (ours / theirs; below 1 is faster) with b.ReportMetric.

func randomFile(b *testing.B, dir string, size int) string {
	b.Helper()
	p := filepath.Join(dir, "data.bin")
	buf := make([]byte, size)
	rng := rand.New(rand.NewPCG(7, 11))
	for i := 0; i+8 <= len(buf); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			buf[i+j] = byte(v >> (8 * j))
		}
	}
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// timeCmd runs a shell pipeline n times and returns the median duration.
func timeCmd(b *testing.B, n int, script string) time.Duration {
	b.Helper()
	var ds []time.Duration
	for range n {
		start := time.Now()
		if out, err := exec.Command("sh", "-c", script).CombinedOutput(); err != nil {
			b.Fatalf("%s: %v\n%s", script, err, out)
		}
		ds = append(ds, time.Since(start))
	}
	for i := range ds {
		for j := i + 1; j < len(ds); j++ {
			if ds[j] < ds[i] {
				ds[i], ds[j] = ds[j], ds[i]
			}
		}
	}
	return ds[len(ds)/2]
}

func needTool(b *testing.B, tool string) {
	if _, err := exec.LookPath(tool); err != nil {
		b.Skipf("SKIPPING comparison: %s not installed (apt-get install %s)", tool, tool)
	}
}

const benchSize = 128 << 20

func BenchmarkObjectPut(b *testing.B) {
	needTool(b, "b3sum")
	ctx := context.Background()
	dir := b.TempDir()
	src := randomFile(b, dir, benchSize)
	b3 := timeCmd(b, 5, "b3sum --num-threads 1 "+src+" >/dev/null")
	b.SetBytes(benchSize)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		objs := store.NewObjects(store.NewLayout(filepath.Join(dir, strconv.Itoa(i))))
		f, _ := os.Open(src)
		b.StartTimer()
		if _, err := objs.Put(ctx, f); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		f.Close()
		_ = os.RemoveAll(filepath.Join(dir, strconv.Itoa(i)))
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(b3), "x_b3sum_1thread")
}

func BenchmarkObjectGet(b *testing.B) {
	needTool(b, "b3sum")
	ctx := context.Background()
	dir := b.TempDir()
	src := randomFile(b, dir, benchSize)
	objs := store.NewObjects(store.NewLayout(filepath.Join(dir, "s")))
	f, _ := os.Open(src)
	d, err := objs.Put(ctx, f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	b3 := timeCmd(b, 5, "b3sum --num-threads 1 "+objs.Path(d)+" >/dev/null")
	b3all := timeCmd(b, 5, "b3sum "+objs.Path(d)+" >/dev/null")
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		r, err := objs.Open(ctx, d)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		r.Close()
	}
	per := float64(b.Elapsed()) / float64(b.N)
	b.ReportMetric(per/float64(b3), "x_b3sum_1thread")
	b.ReportMetric(per/float64(b3all), "x_b3sum_default")
}

// benchTree builds a tree of about 64 MiB: 40 dirs x 50 files of mixed sizes, and
// symlinks.
func benchTree(b *testing.B) string {
	b.Helper()
	root := b.TempDir()
	rng := rand.New(rand.NewPCG(3, 5))
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for d := range 40 {
		dir := filepath.Join(root, fmt.Sprintf("dir%02d", d), "sub")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 50 {
			size := []int{100, 4 << 10, 30 << 10, 100 << 10}[f%4]
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("file%03d.dat", f)), buf[:size], 0o644); err != nil {
				b.Fatal(err)
			}
		}
		_ = os.Symlink("sub/file000.dat", filepath.Join(root, fmt.Sprintf("dir%02d", d), "link"))
	}
	return root
}

func BenchmarkPack(b *testing.B) {
	needTool(b, "tar")
	needTool(b, "b3sum")
	ctx := context.Background()
	tree := benchTree(b)
	gnu := timeCmd(b, 5, "tar -C "+tree+" -cf - . | b3sum >/dev/null")
	var size int64
	b.ResetTimer()
	for range b.N {
		// As the engine commits: Pack in one goroutine, hashing in another (like the
		// tar | b3sum pipeline it is compared with).
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(store.Pack(ctx, tree, pw, nil)) }()
		d, n, err := schema.HashReader(pr)
		if err != nil || d.IsZero() {
			b.Fatal(err)
		}
		size = n
	}
	b.SetBytes(size)
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(gnu), "x_gnutar_b3sum")
}

// BenchmarkPutTreeStored: what a commit with no change does, PutTree of a tree whose
// archive is already stored (one read of the tree, nothing written), against
// tar -c | b3sum.
func BenchmarkPutTreeStored(b *testing.B) {
	needTool(b, "tar")
	needTool(b, "b3sum")
	ctx := context.Background()
	tree := benchTree(b)
	objs := store.NewObjects(store.NewLayout(b.TempDir()))
	d, err := objs.PutTree(ctx, tree, nil)
	if err != nil {
		b.Fatal(err)
	}
	size, err := objs.Size(ctx, d)
	if err != nil {
		b.Fatal(err)
	}
	gnu := timeCmd(b, 5, "tar -C "+tree+" -cf - . | b3sum >/dev/null")
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		if got, err := objs.PutTree(ctx, tree, nil); err != nil || got != d {
			b.Fatal(got, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(gnu), "x_gnutar_b3sum")
}

// BenchmarkVerifyLargeObject: Verify of a store holding one 256 MiB object, against
// b3sum of the same file (which hashes one file on every core, from mmap).
func BenchmarkVerifyLargeObject(b *testing.B) {
	needTool(b, "b3sum")
	ctx := context.Background()
	s := store.New(b.TempDir(), store.Options{})
	if err := s.Layout.Initialize(ctx); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(randomFile(b, b.TempDir(), 256<<20))
	if err != nil {
		b.Fatal(err)
	}
	d, err := s.Objects.Put(ctx, f)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	peer := timeCmd(b, 5, "b3sum "+s.Objects.Path(d)+" >/dev/null")
	b.SetBytes(256 << 20)
	b.ResetTimer()
	for range b.N {
		if rep, err := s.Verify(ctx); err != nil || !rep.OK() {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(peer), "x_b3sum")
}

func BenchmarkUnpack(b *testing.B) {
	needTool(b, "tar")
	ctx := context.Background()
	tree := benchTree(b)
	var archive bytes.Buffer
	if err := store.Pack(ctx, tree, &archive, nil); err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	tarFile := filepath.Join(work, "a.tar")
	_ = os.WriteFile(tarFile, archive.Bytes(), 0o644)
	gnu := timeCmd(b, 5, "d=$(mktemp -d -p "+work+") && tar -C $d -xf "+tarFile+" && rm -rf $d")
	b.SetBytes(int64(archive.Len()))
	b.ResetTimer()
	for i := range b.N {
		dst := filepath.Join(work, "u"+strconv.Itoa(i))
		if err := store.Unpack(ctx, bytes.NewReader(archive.Bytes()), dst, store.UnpackOptions{}); err != nil {
			b.Fatal(err)
		}
		_ = os.RemoveAll(dst)
	}
	b.ReportMetric(float64(b.Elapsed())/float64(b.N)/float64(gnu), "x_gnutar")
}

// BenchmarkGC100k: a dry-run collection (scan, read every record, mark) over 100,000
// objects, 1,000 layers and 500 environments; and Mark alone on the same graph.
func BenchmarkGC100k(b *testing.B) {
	ctx := context.Background()
	s, err := store.Open(ctx, b.TempDir(), store.Options{})
	if err != nil {
		b.Fatal(err)
	}
	const nObj, nLayer, nEnv = 100_000, 1_000, 500
	objs := make([]schema.Digest, nObj)
	for i := range objs {
		objs[i] = schema.SumString(strconv.Itoa(i))
		// Written directly: the benchmark measures GC, not 100k fsyncs.
		if err := os.WriteFile(s.Objects.Path(objs[i]), nil, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	layers := make([]schema.Digest, nLayer)
	for i := range layers {
		l := store.Layer{Hash: objs[i], Kind: store.KindBase, ObjectRefs: objs[i*50 : i*50+50], ReadOnly: true, TarHash: objs[i]}
		if layers[i], err = s.Layers.Put(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	for i := range nEnv {
		m := sampleMeta("env" + strconv.Itoa(i))
		m.BaseLayer, m.DependencyLayers, m.RefCount = layers[i], nil, uint32(i%2)
		if err := s.Envs.Put(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("DryRun", func(b *testing.B) {
		for range b.N {
			rep, err := s.GC(ctx, store.GCOptions{DryRun: true})
			if err != nil {
				b.Fatal(err)
			}
			if len(rep.OrphanedObjects) < nObj/2 {
				b.Fatalf("only %d orphans", len(rep.OrphanedObjects))
			}
		}
	})
	g, err := s.Graph(ctx)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Mark", func(b *testing.B) {
		for range b.N {
			store.Mark(g)
		}
	})
}
