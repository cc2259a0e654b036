package main

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/remote/remotetest"
)

const benchSize = 1 << 30

// benchEnv is an environment whose base layer holds one 1 GiB object, and a server.
func benchEnv(b *testing.B) (remotetest.Fixture, *proc, string, string) {
	b.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatal("curl is required for the transfer benchmarks")
		}
		b.Skip("SKIPPING: curl not installed; the benchmark compares against it")
	}
	src := io.LimitReader(rand.NewChaCha8([32]byte{7}), benchSize)
	f := remotetest.NewFixtureFrom(b, "bench", src)
	data := b.TempDir()
	srv := startServer(b, nil, "--data-dir", data)
	return f, srv, data, curl
}

func runCurl(b *testing.B, curl string, args ...string) time.Duration {
	b.Helper()
	start := time.Now()
	out, err := exec.Command(curl, append([]string{"-sS", "-f", "-H", "Expect:", "-H", "X-Karapace-Protocol: 1"}, args...)...).CombinedOutput()
	if err != nil {
		b.Fatalf("curl %v: %v %s", args, err, out)
	}
	return time.Since(start)
}

func clearServer(b *testing.B, data string) {
	b.Helper()
	for _, k := range remote.Kinds {
		dir := filepath.Join(data, "blobs", k.String())
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPush1GiB pushes an environment with a 1 GiB object to a fresh karapace-server
// and, in the same iteration, uploads the same file with `curl -T` to the same server
// (which verifies and stores both the same way). x-curl is our time over curl's.
func BenchmarkPush1GiB(b *testing.B) {
	f, srv, data, curl := benchEnv(b)
	ctx := context.Background()
	c := client(b, srv.url, "")
	obj := f.Store.Objects.Path(f.TarKey)
	var ours, theirs []time.Duration
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clearServer(b, data)
		b.StartTimer()
		start := time.Now()
		if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		b.StopTimer()
		clearServer(b, data)
		theirs = append(theirs, runCurl(b, curl, "-T", obj, srv.url+"/objects/"+f.TarKey.String()))
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ours, theirs)
}

// BenchmarkPull1GiB pulls the environment into a fresh local store (verifying every
// byte, fsyncing, committing) and, in the same iteration, downloads the same object with
// `curl -o` from the same server.
func BenchmarkPull1GiB(b *testing.B) {
	f, srv, _, curl := benchEnv(b)
	ctx := context.Background()
	c := client(b, srv.url, "")
	if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	var ours, theirs []time.Duration
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := remotetest.EmptyStore(b)
		b.StartTimer()
		start := time.Now()
		if _, err := remote.Pull(ctx, c, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{}); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		b.StopTimer()
		os.RemoveAll(dst.Layout.Root())
		out := filepath.Join(b.TempDir(), "curl-out")
		theirs = append(theirs, runCurl(b, curl, "-o", out, srv.url+"/objects/"+f.TarKey.String()))
		os.Remove(out)
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ours, theirs)
}

// BenchmarkPutBlob1GiB isolates the transfer primitive: one PUT of the 1 GiB object
// through the HTTP backend, streamed from the file (what Push does per blob to a server
// that verifies uploads, as ours does), against `curl -T` of the same file. Push adds the HEADs and the small durable PUTs of the
// layers and the metadata.
func BenchmarkPutBlob1GiB(b *testing.B) {
	f, srv, data, curl := benchEnv(b)
	ctx := context.Background()
	c := client(b, srv.url, "")
	obj := f.Store.Objects.Path(f.TarKey)
	key := f.TarKey.String()
	var ours, theirs []time.Duration
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clearServer(b, data)
		b.StartTimer()
		start := time.Now()
		fh, err := os.Open(obj)
		if err != nil {
			b.Fatal(err)
		}
		err = c.PutBlob(ctx, remote.Object, key, fh, benchSize)
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		b.StopTimer()
		clearServer(b, data)
		theirs = append(theirs, runCurl(b, curl, "-T", obj, srv.url+"/objects/"+key))
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ours, theirs)
}

// BenchmarkGetBlob1GiB: one GET of the object through the HTTP backend, hashed on the
// way into a file (no fsync, as curl), against `curl -o`.
func BenchmarkGetBlob1GiB(b *testing.B) {
	f, srv, _, curl := benchEnv(b)
	ctx := context.Background()
	c := client(b, srv.url, "")
	key := f.TarKey.String()
	if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	var ours, theirs []time.Duration
	b.SetBytes(benchSize)
	b.ResetTimer()
	for range b.N {
		out := filepath.Join(dir, "out")
		start := time.Now()
		rc, err := c.GetBlob(ctx, remote.Object, key)
		if err != nil {
			b.Fatal(err)
		}
		fh, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(fh, remote.NewVerifyingReader(rc, f.TarKey, key))
		rc.Close()
		fh.Close()
		if err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
		b.StopTimer()
		os.Remove(out)
		theirs = append(theirs, runCurl(b, curl, "-o", out, srv.url+"/objects/"+key))
		os.Remove(out)
		b.StartTimer()
	}
	b.StopTimer()
	report(b, ours, theirs)
}

// report prints medians: the machine is shared, so one slow iteration of either side
// must not decide the ratio. x-curl is the median of the per-iteration ratios.
func report(b *testing.B, ours, theirs []time.Duration) {
	gib := float64(benchSize) / (1 << 30)
	ratios := make([]float64, len(ours))
	for i := range ours {
		ratios[i] = ours[i].Seconds() / theirs[i].Seconds()
	}
	o, c, r := median(durs(ours)), median(durs(theirs)), median(ratios)
	b.ReportMetric(gib/o, "GiB/s")
	b.ReportMetric(gib/c, "curl-GiB/s")
	b.ReportMetric(r, "x-curl")
	b.Logf("median of %d: ours %.3fs, curl %.3fs per GiB; ratio %.2fx curl (per iteration: %.2f)", len(ours), o, c, r, ratios)
}

func durs(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
