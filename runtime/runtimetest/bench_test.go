package runtimetest

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/testrootfs"
)

// BenchmarkExecTrue runs `exec -- true` through every real backend in turn, on the
// busybox rootfs, and reports each one's time per exec and the OCI runtimes' ratios to
// the namespace backend (measured in the same run, interleaved, so machine noise hits
// all three alike).
func BenchmarkExecTrue(b *testing.B) {
	requireNamespaces(b)
	rootfs := rootfsFor(b, testrootfs.Busybox(b))
	type bench struct {
		name  string
		b     runtime.Backend
		spec  *runtime.Spec
		total time.Duration
	}
	var bs []*bench
	for _, be := range backends {
		backend := be.new(b)
		bs = append(bs, &bench{name: be.name, b: backend, spec: Env(b, backend.Name(), rootfs, "bench "+be.name)})
	}
	ctx := context.Background()
	stdio := runtime.Stdio{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
	run := func(x *bench) time.Duration {
		start := time.Now()
		code, err := x.b.Exec(ctx, x.spec, stdio, []string{"true"})
		if err != nil || code != 0 {
			b.Fatalf("%s: exec true: %d %v", x.name, code, err)
		}
		return time.Since(start)
	}
	for _, x := range bs {
		run(x) // warm the page cache
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, x := range bs {
			x.total += run(x)
		}
	}
	b.StopTimer()
	ms := func(x *bench) float64 { return float64(x.total.Microseconds()) / 1000 / float64(b.N) }
	for _, x := range bs {
		b.ReportMetric(ms(x), x.name+"-ms/exec")
	}
	for _, x := range bs[1:] {
		b.ReportMetric(ms(x)/ms(bs[0]), x.name+"/namespace")
	}
}
