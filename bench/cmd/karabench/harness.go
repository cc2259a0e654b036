package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/karapace/karapace/bench"
)

type harness struct {
	ctx context.Context
	cfg config
	out io.Writer
	log *slog.Logger
	rep report

	rootfs  string // the busybox root file system every exec contender runs
	tarball string // the same tree as an image tarball
	home    string
	project string
	// cleanups run at the end, last first.
	cleanups []func()
}

func (h *harness) cleanup() {
	for i := len(h.cleanups) - 1; i >= 0; i-- {
		h.cleanups[i]()
	}
}

func (h *harness) skip(why string) {
	h.log.Warn("not measured", "why", why)
	h.rep.Skipped = append(h.rep.Skipped, why)
}

func (h *harness) goal(name string, pass bool, format string, args ...any) {
	h.rep.Goals = append(h.rep.Goals, goal{Goal: name, Pass: pass, Detail: fmt.Sprintf(format, args...)})
}

// setup builds the busybox rootfs and its tarball, and the directories karapace runs in.
func (h *harness) setup() error {
	h.home = filepath.Join(h.cfg.work, "home")
	h.project = filepath.Join(h.cfg.work, "project")
	for _, d := range []string{h.home, h.project} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	h.rep.Machine["load_before"] = loadavg()
	bb, err := exec.LookPath("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static is needed for the test rootfs: %w", err)
	}
	h.rootfs = filepath.Join(h.cfg.work, "rootfs")
	if err := busyboxRootfs(bb, h.rootfs); err != nil {
		return fmt.Errorf("busybox rootfs: %w", err)
	}
	h.tarball = filepath.Join(h.cfg.work, "rootfs.tar")
	if out, err := exec.CommandContext(h.ctx, "tar", "-C", h.rootfs, "-cf", h.tarball, ".").CombinedOutput(); err != nil {
		return fmt.Errorf("tar: %v: %s", err, out)
	}
	return nil
}

// busyboxRootfs makes a tiny root file system: static busybox, a symlink per applet, the
// usual directories and mount points, /etc/passwd and /etc/group.
func busyboxRootfs(bin, root string) error {
	for _, d := range []string{"bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "home", "tmp", "var/tmp", "proc", "sys", "dev", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(root, "tmp"), 0o1777); err != nil {
		return err
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755); err != nil {
		return err
	}
	list, err := exec.Command(bin, "--list").Output()
	if err != nil {
		return fmt.Errorf("busybox --list: %w", err)
	}
	for _, applet := range strings.Fields(string(list)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(root, "bin", applet)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for p, text := range files {
		if err := os.WriteFile(filepath.Join(root, p), []byte(text), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// kp is a karapace command on the given store, run from the project directory.
func (h *harness) kp(store string, extraEnv []string, args ...string) *exec.Cmd {
	c := exec.CommandContext(h.ctx, filepath.Join(h.cfg.bin, "karapace"), args...)
	c.Dir = h.project
	c.Env = append([]string{
		"HOME=" + h.home, "PATH=" + os.Getenv("PATH"), "KARAPACE_STORE=" + store,
		"XDG_CONFIG_HOME=" + filepath.Join(h.home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(h.home, ".cache"),
	}, extraEnv...)
	return c
}

// kpOut runs a karapace command untimed (but records its RSS) and returns its stdout.
func (h *harness) kpOut(store string, extraEnv []string, args ...string) (string, error) {
	c := h.kp(store, extraEnv, args...)
	var out bytes.Buffer
	c.Stdout = &out
	s, err := bench.Run(h.ctx, c)
	h.noteRSS(args, s)
	return out.String(), err
}

// noteRSS keeps the peak RSS of each karapace command.
func (h *harness) noteRSS(args []string, s bench.Sample) {
	name := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			name = a
			break
		}
	}
	if name == "" || s.MaxRSS == 0 {
		return
	}
	h.rep.RSS[name] = max(h.rep.RSS[name], mib(s.MaxRSS))
}

// manifest writes a manifest for an image on a backend and returns its path.
func (h *harness) manifest(name, image, backend string) (string, error) {
	p := filepath.Join(h.project, name)
	text := fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = %q\n\n[runtime]\nbackend = %q\n", image, backend)
	return p, os.WriteFile(p, []byte(text), 0o644)
}

// compare runs contenders interleaved and adds a row per contender, with ratios against
// the contender named ref (none when ref is ""). Failing contenders are reported as
// skipped. It returns the medians by name.
func (h *harness) compare(section string, rounds int, ref string, bytes int64, cs []bench.Contender) map[string]time.Duration {
	samples, errs := bench.Interleave(h.ctx, rounds, cs)
	med := map[string]time.Duration{}
	for i, c := range cs {
		if errs[i] != nil {
			h.skip(fmt.Sprintf("%s / %s: %v", section, c.Name, errs[i]))
			continue
		}
		med[c.Name] = bench.Median(bench.Walls(samples[i]))
	}
	for i, c := range cs {
		m, ok := med[c.Name]
		if !ok {
			continue
		}
		r := row{Section: section, Name: c.Name, Runs: len(samples[i]), MedianMS: ms(m)}
		if ref != "" && c.Name != ref && med[ref] != 0 {
			r.Ratio = bench.Ratio(m, med[ref])
		}
		if bytes > 0 {
			r.GiBps = bench.Throughput(bytes, m)
		}
		if strings.HasPrefix(c.Name, "karapace") {
			r.RSSMiB = mib(bench.PeakRSS(samples[i]))
			cmd := c.Cmd()
			h.noteRSS(cmd.Args[1:], bench.Sample{MaxRSS: bench.PeakRSS(samples[i])})
		}
		h.rep.Rows = append(h.rep.Rows, r)
	}
	return med
}

func (h *harness) rounds(full, quick int) int {
	if h.cfg.rounds > 0 {
		return h.cfg.rounds
	}
	if h.cfg.quick {
		return quick
	}
	return full
}

func machineFacts() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "model name") {
				m["cpu"] = strings.TrimSpace(l[strings.Index(l, ":")+1:])
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if l, _, ok := strings.Cut(string(b), "\n"); ok {
			m["memory"] = strings.Join(strings.Fields(l)[1:], " ")
		}
	}
	if b, err := os.ReadFile("/etc/debian_version"); err == nil {
		m["debian"] = strings.TrimSpace(string(b))
	}
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
