package namespace

import (
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
)

// BenchmarkExecTrue runs `true` in the busybox rootfs through the launcher (the full
// session plan: overlay root, /proc, /sys, minimal /dev, /tmp, pivot_root, PID 1),
// against the floor (unshare + chroot, no overlay, no /dev) and bwrap, interleaved so
// that machine noise hits all alike. It reports medians and ratios to the floor.
//
//	go test -run '^$' -bench ExecTrue -benchtime 200x ./runtime/namespace
func BenchmarkExecTrue(b *testing.B) {
	e := newTestEnv(b)
	p := e.plan(b, "true")
	type peer struct {
		name string
		run  func() error
	}
	peers := []peer{{"karapace", func() error {
		code, err := Run(context.Background(), p, runtime.Stdio{}, Options{})
		if err == nil && code != 0 {
			err = exec.ErrNotFound
		}
		return err
	}}}
	if path, err := exec.LookPath("unshare"); err == nil {
		peers = append(peers, peer{"unshare+chroot (floor)", func() error {
			return exec.Command(path, "--user", "--map-root-user", "--mount", "--pid", "--fork", "chroot", e.lower, "/bin/true").Run()
		}})
	}
	if path, err := exec.LookPath("bwrap"); err == nil {
		peers = append(peers, peer{"bwrap", func() error {
			return exec.Command(path, "--unshare-user", "--uid", "0", "--gid", "0", "--unshare-pid", "--unshare-uts", "--unshare-ipc",
				"--ro-bind", e.lower, "/", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true").Run()
		}})
	}
	times := make([][]time.Duration, len(peers))
	for _, pr := range peers { // warm up caches
		if err := pr.run(); err != nil {
			b.Fatalf("%s: %v", pr.name, err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, pr := range peers {
			start := time.Now()
			if err := pr.run(); err != nil {
				b.Fatalf("%s: %v", pr.name, err)
			}
			times[j] = append(times[j], time.Since(start))
		}
	}
	b.StopTimer()
	med := make([]time.Duration, len(peers))
	for j := range peers {
		sort.Slice(times[j], func(a, c int) bool { return times[j][a] < times[j][c] })
		med[j] = times[j][len(times[j])/2]
	}
	floor := med[0]
	for j, pr := range peers {
		if strings.HasPrefix(pr.name, "unshare") {
			floor = med[j]
		}
	}
	var report strings.Builder
	for j, pr := range peers {
		report.WriteString("\n  " + pr.name + ": median " + med[j].Round(10*time.Microsecond).String() +
			", " + ratio(med[j], floor) + "x the floor")
		b.ReportMetric(float64(med[j].Microseconds())/1000, strings.Fields(pr.name)[0]+"-ms")
	}
	b.Logf("exec true, %d interleaved rounds:%s", b.N, report.String())
}

func ratio(a, b time.Duration) string { return fmt.Sprintf("%.2f", float64(a)/float64(b)) }
