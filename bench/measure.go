package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Sample is one finished run of a command: wall time and the peak resident set size of
// the process tree the kernel reports to wait4 (ru_maxrss: the largest of the process
// and its waited-for descendants).
type Sample struct {
	Wall   time.Duration
	MaxRSS int64 // bytes
}

// ErrCommand is the class of a measured command that exited non-zero or did not start.
var ErrCommand = errors.New("command failed")

// Run runs c to completion and measures it. Unless the caller set them, stdout is
// discarded and stderr kept for the error message.
func Run(ctx context.Context, c *exec.Cmd) (Sample, error) {
	var errb bytes.Buffer
	if c.Stderr == nil {
		c.Stderr = &errb
	}
	start := time.Now()
	err := c.Run()
	wall := time.Since(start)
	s := Sample{Wall: wall}
	if c.ProcessState != nil {
		if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
			s.MaxRSS = ru.Maxrss * 1024
		}
	}
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 2000 {
			msg = msg[len(msg)-2000:]
		}
		return s, fmt.Errorf("%w: %s: %v: %s", ErrCommand, strings.Join(c.Args, " "), err, msg)
	}
	if err := ctx.Err(); err != nil {
		return s, err
	}
	return s, nil
}

// Median returns the median of ds (the mean of the middle two for an even count), 0 for
// none. ds is not modified.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Ratio is a/b, 0 when b is 0.
func Ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// Throughput is bytes per second in GiB/s, 0 for a zero duration.
func Throughput(bytes int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(bytes) / d.Seconds() / (1 << 30)
}

// Interleave runs each contender once per round, rounds times, in turn (so machine load
// hits every contender alike), after one untimed warm-up round. Each round runs them in
// a new order (a fixed pseudo-random sequence): a heavy contender leaves work behind it
// (podman's cleanup of a --rm container, an overlay's teardown) that would otherwise
// land on the same neighbour every round. It returns the samples per contender and the
// first error of each; a failing contender is dropped from later rounds.
func Interleave(ctx context.Context, rounds int, contenders []Contender) ([][]Sample, []error) {
	samples := make([][]Sample, len(contenders))
	errs := make([]error, len(contenders))
	order := make([]int, len(contenders))
	for i := range order {
		order[i] = i
	}
	rnd := rand.New(rand.NewPCG(uint64(len(contenders)), uint64(rounds)))
	for round := -1; round < rounds; round++ {
		rnd.Shuffle(len(order), func(a, b int) { order[a], order[b] = order[b], order[a] })
		for _, i := range order {
			c := contenders[i]
			if errs[i] != nil {
				continue
			}
			if err := ctx.Err(); err != nil {
				errs[i] = err
				continue
			}
			if c.Before != nil {
				if err := c.Before(); err != nil {
					errs[i] = fmt.Errorf("%s: preparing a run: %w", c.Name, err)
					continue
				}
			}
			s, err := Run(ctx, c.Cmd())
			if err != nil {
				errs[i] = err
				continue
			}
			if round >= 0 {
				samples[i] = append(samples[i], s)
			}
		}
	}
	return samples, errs
}

// Walls returns the wall times of ss.
func Walls(ss []Sample) []time.Duration {
	out := make([]time.Duration, len(ss))
	for i, s := range ss {
		out[i] = s.Wall
	}
	return out
}

// PeakRSS returns the largest MaxRSS of ss.
func PeakRSS(ss []Sample) int64 {
	var m int64
	for _, s := range ss {
		m = max(m, s.MaxRSS)
	}
	return m
}

// Contender is one side of a comparison: a name and a fresh command per run. Before,
// when set, runs untimed before each run (to reset what the previous run changed).
type Contender struct {
	Name   string
	Cmd    func() *exec.Cmd
	Before func() error
}
