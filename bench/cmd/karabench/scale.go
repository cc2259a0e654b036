package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/karapace/karapace/bench"
)

// scaleSection: list and gc on synthesized stores of growing size. Each store holds n
// environments and n objects, a tenth of them orphans (what the first gc deletes).
func (h *harness) scaleSection() error {
	var base struct{ list, gc time.Duration }
	for i, n := range h.cfg.counts {
		store := filepath.Join(h.cfg.work, fmt.Sprintf("store-scale-%d", n))
		start := time.Now()
		if err := bench.Synthesize(h.ctx, store, bench.Synth{Envs: n, Objects: n, Orphans: n / 10}); err != nil {
			return err
		}
		h.log.Info("synthesized a store", "envs", n, "objects", n, "took", time.Since(start).Round(time.Millisecond))
		c := h.kp(store, nil, "gc")
		s, err := bench.Run(h.ctx, c)
		if err != nil {
			return err
		}
		h.noteRSS([]string{"gc"}, s)
		label := fmt.Sprintf("%d envs, %d objects", n, n)
		rounds := h.rounds(5, 3)
		if n >= 50000 && h.cfg.rounds == 0 {
			rounds = 1 // plus the warm-up run: each takes seconds here
		}
		med := h.compare("scale: "+label, rounds, "", 0, []bench.Contender{
			{Name: "karapace list", Cmd: func() *exec.Cmd { return h.kp(store, nil, "list") }},
			{Name: "karapace list --json", Cmd: func() *exec.Cmd { return h.kp(store, nil, "--json", "list") }},
			{Name: "karapace gc (nothing to delete)", Cmd: func() *exec.Cmd { return h.kp(store, nil, "gc") }},
		})
		gcRow := row{Section: "scale: " + label, Name: fmt.Sprintf("karapace gc (deletes %d objects)", n/10), Runs: 1,
			MedianMS: ms(s.Wall), RSSMiB: mib(s.MaxRSS)}
		if i == 0 {
			base.list, base.gc = med["karapace list"], s.Wall
		} else {
			gcRow.Ratio = bench.Ratio(s.Wall, base.gc)
			gcRow.Note = fmt.Sprintf("ratio against %d", h.cfg.counts[0])
			for j := range h.rep.Rows {
				if r := &h.rep.Rows[j]; r.Section == "scale: "+label && r.Name == "karapace list" {
					r.Ratio = bench.Ratio(med["karapace list"], base.list)
					r.Note = fmt.Sprintf("ratio against %d", h.cfg.counts[0])
				}
			}
		}
		// CPU time (user + system, both cores) does not swing with the machine's load
		// the way wall time does: the rows note it.
		for _, name := range []string{"karapace list", "karapace list --json", "karapace gc (nothing to delete)"} {
			args := map[string][]string{"karapace list": {"list"}, "karapace list --json": {"--json", "list"},
				"karapace gc (nothing to delete)": {"gc"}}[name]
			cpu, err := h.cpuTime(store, args, rounds)
			if err != nil {
				return err
			}
			for j := range h.rep.Rows {
				if r := &h.rep.Rows[j]; r.Section == "scale: "+label && r.Name == name {
					r.Note = strings.TrimPrefix(r.Note+fmt.Sprintf("; CPU %.0f ms", ms(cpu)), "; ")
				}
			}
		}
		h.rep.Rows = append(h.rep.Rows, gcRow)
		if n == 10000 {
			m := med["karapace list"]
			h.goal("list of 10k environments under 200 ms", m > 0 && m < 200*time.Millisecond, "karapace list of 10000 environments: %.0f ms", ms(m))
		}
		if err := os.RemoveAll(store); err != nil {
			return err
		}
	}
	return nil
}

// cpuTime runs karapace with args on store rounds times and returns the median of the
// CPU time (user plus system) each run used.
func (h *harness) cpuTime(store string, args []string, rounds int) (time.Duration, error) {
	var cpu []time.Duration
	for range max(rounds, 1) {
		c := h.kp(store, nil, args...)
		if _, err := bench.Run(h.ctx, c); err != nil {
			return 0, err
		}
		cpu = append(cpu, c.ProcessState.UserTime()+c.ProcessState.SystemTime())
	}
	return bench.Median(cpu), nil
}
