// Command karabench measures the built karapace binaries side by side with their peers
// on this machine and prints medians, ratios and pass/fail goals (docs/performance.md).
//
//	karabench [-quick] [-bin DIR] [-work DIR] [-rounds N] [-size BYTES] [-counts 1000,10000]
//	          [-only exec,build,data,remote,scale] [-json FILE]
//
// Contenders run interleaved (one run of each per round, after an untimed warm-up
// round), so a load spike hits every side alike. Everything it creates lives in -work
// (a temp dir by default, removed at the end).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

type config struct {
	bin     string
	work    string
	keep    bool
	quick   bool
	rounds  int
	size    int64
	counts  []int
	only    map[string]bool
	jsonOut string
}

// row is one measured contender.
type row struct {
	Section  string  `json:"section"`
	Name     string  `json:"name"`
	Runs     int     `json:"runs"`
	MedianMS float64 `json:"median_ms"`
	// Ratio is this row's median over the section's reference (the floor or the peer
	// pipeline); 0 for the reference itself or when there is none.
	Ratio  float64 `json:"ratio,omitempty"`
	RSSMiB float64 `json:"max_rss_mib,omitempty"`
	GiBps  float64 `json:"gib_per_s,omitempty"`
	Note   string  `json:"note,omitempty"`
}

type goal struct {
	Goal   string `json:"goal"`
	Pass   bool   `json:"pass"`
	Detail string `json:"detail"`
}

type report struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Config  map[string]string `json:"config"`
	Rows    []row             `json:"rows"`
	Goals   []goal            `json:"goals"`
	Skipped []string          `json:"skipped"`
	// RSS is the peak resident set size of each karapace command seen, in MiB.
	RSS map[string]float64 `json:"karapace_max_rss_mib"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "karabench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("karabench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var counts, only, size string
	fs.StringVar(&c.bin, "bin", "bin", "directory holding the built karapace and karapace-server")
	fs.StringVar(&c.work, "work", "", "work directory (default: a new temp dir, removed at the end)")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory")
	fs.BoolVar(&c.quick, "quick", false, "small sizes and few rounds (about a minute)")
	fs.IntVar(&c.rounds, "rounds", 0, "timed rounds per comparison (default 15 for exec, 3 for data; fewer with -quick)")
	fs.StringVar(&size, "size", "", "bytes in the commit/restore/push tree, with an optional K/M/G suffix (default 1G, 64M with -quick)")
	fs.StringVar(&counts, "counts", "", "store sizes for list and gc (default 1000,10000,100000; 1000,10000 with -quick)")
	fs.StringVar(&only, "only", "exec,build,data,remote,scale", "sections to run")
	fs.StringVar(&c.jsonOut, "json", "", "also write the report as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if size == "" {
		size = map[bool]string{false: "1G", true: "64M"}[c.quick]
	}
	var err error
	if c.size, err = parseSize(size); err != nil {
		return err
	}
	if counts == "" {
		counts = map[bool]string{false: "1000,10000,100000", true: "1000,10000"}[c.quick]
	}
	for _, f := range strings.Split(counts, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 10 {
			return fmt.Errorf("-counts: bad count %q", f)
		}
		c.counts = append(c.counts, n)
	}
	c.only = map[string]bool{}
	for _, s := range strings.Split(only, ",") {
		c.only[strings.TrimSpace(s)] = true
	}
	if c.bin, err = filepath.Abs(c.bin); err != nil {
		return err
	}
	for _, b := range []string{"karapace", "karapace-server"} {
		if _, err := os.Stat(filepath.Join(c.bin, b)); err != nil {
			return fmt.Errorf("%s not built (run make build): %w", b, err)
		}
	}
	if c.work == "" {
		if c.work, err = os.MkdirTemp("/var/tmp", "karabench-"); err != nil {
			return err
		}
		if !c.keep {
			defer removeAll(c.work)
		}
	}
	if c.work, err = filepath.Abs(c.work); err != nil {
		return err
	}
	h := &harness{
		ctx: ctx, cfg: c, out: stderr,
		log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
		rep: report{
			Date: time.Now().UTC().Format(time.RFC3339), Machine: machineFacts(),
			Config: map[string]string{"quick": strconv.FormatBool(c.quick), "size": strconv.FormatInt(c.size, 10), "counts": counts, "work": c.work},
			RSS:    map[string]float64{}, Skipped: []string{},
		},
	}
	defer h.cleanup()
	started := time.Now()
	sections := []struct {
		name string
		fn   func() error
	}{
		{"exec", h.execSection}, {"build", h.buildSection}, {"data", h.dataSection},
		{"remote", h.remoteSection}, {"scale", h.scaleSection},
	}
	if err := h.setup(); err != nil {
		return err
	}
	for _, s := range sections {
		if !c.only[s.name] {
			continue
		}
		h.log.Info("section", "name", s.name)
		if err := s.fn(); err != nil {
			if ctx.Err() != nil {
				return err
			}
			h.skip(fmt.Sprintf("section %s failed: %v", s.name, err))
		}
	}
	h.rep.Machine["load_after"] = loadavg()
	h.rep.Config["elapsed"] = time.Since(started).Round(time.Second).String()
	h.print(stdout)
	if c.jsonOut != "" {
		b, err := json.MarshalIndent(h.rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(c.jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("-size: bad size %q", s)
	}
	return n * mult, nil
}

func (h *harness) print(w io.Writer) {
	r := h.rep
	fmt.Fprintf(w, "karabench %s (took %s)\n", r.Date, r.Config["elapsed"])
	for _, k := range []string{"kernel", "cpu", "cpus", "memory", "load_before", "load_after"} {
		fmt.Fprintf(w, "  %-12s %s\n", k, r.Machine[k])
	}
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nsection\tcontender\truns\tmedian\tratio\tGiB/s\tmax RSS\tnote")
	for _, x := range r.Rows {
		ratio, gibps, rss := "", "", ""
		if x.Ratio != 0 {
			ratio = fmt.Sprintf("%.2fx", x.Ratio)
		}
		if x.GiBps != 0 {
			gibps = fmt.Sprintf("%.2f", x.GiBps)
		}
		if x.RSSMiB != 0 {
			rss = fmt.Sprintf("%.0f MiB", x.RSSMiB)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", x.Section, x.Name, x.Runs, fmtMS(x.MedianMS), ratio, gibps, rss, x.Note)
	}
	tw.Flush()
	fmt.Fprintln(w, "\npeak RSS of each karapace command:")
	for _, k := range sortedKeys(r.RSS) {
		fmt.Fprintf(w, "  %-14s %6.1f MiB\n", k, r.RSS[k])
	}
	fmt.Fprintln(w, "\ngoals:")
	for _, g := range r.Goals {
		mark := "PASS"
		if !g.Pass {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "  %s  %s: %s\n", mark, g.Goal, g.Detail)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintln(w, "\nnot measured:")
		for _, s := range r.Skipped {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
}

func fmtMS(ms float64) string {
	switch {
	case ms >= 10000:
		return fmt.Sprintf("%.1f s", ms/1000)
	case ms >= 100:
		return fmt.Sprintf("%.0f ms", ms)
	default:
		return fmt.Sprintf("%.2f ms", ms)
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func removeAll(p string) {
	if err := os.RemoveAll(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "karabench: cleanup:", err)
	}
}
