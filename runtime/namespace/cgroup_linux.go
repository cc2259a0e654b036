package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime/sandbox"
)

// ErrNoCgroup is returned when a plan has resource limits and no cgroup is writable.
var ErrNoCgroup = errors.New("no writable cgroup for resource limits")

const cgroup2Magic = 0x63677270

// cgroupRoot is where cgroup hierarchies are mounted; a test seam.
const cgroupRoot = "/sys/fs/cgroup"

// session cgroups live under this directory of each hierarchy.
const cgroupParent = "karapace"

// cgroup is one session's cgroup: one directory per hierarchy holding a controller we
// set a limit on (a single directory on cgroup v2).
type cgroup struct {
	dirs []string
}

// cpuWeight converts cgroup v1 cpu.shares (2..262144) to cgroup v2 cpu.weight (1..10000).
func cpuWeight(shares uint64) uint64 {
	shares = min(max(shares, 2), 262144)
	return 1 + ((shares-2)*9999)/262142
}

// newCgroup creates the session cgroup and writes the limits. It prefers cgroup v2 where
// the unified hierarchy has the controllers (pure v2, or hybrid with controllers moved),
// and falls back to the v1 cpu and memory hierarchies. It returns nil when the plan has
// no limits.
func newCgroup(name string, l sandbox.Limits) (*cgroup, error) {
	if l.CPUShares == 0 && l.MemoryBytes == 0 {
		return nil, nil
	}
	cg, err2 := newCgroup2(name, l)
	if err2 == nil {
		return cg, nil
	}
	cg, err1 := newCgroup1(name, l)
	if err1 == nil {
		return cg, nil
	}
	return nil, fmt.Errorf("%w: cgroup v2: %v; cgroup v1: %v (run as root, or use a delegated cgroup v2 subtree with the cpu and memory controllers)", ErrNoCgroup, err2, err1)
}

func isCgroup2(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Type == cgroup2Magic
}

func newCgroup2(name string, l sandbox.Limits) (*cgroup, error) {
	root := cgroupRoot
	if !isCgroup2(root) {
		root = filepath.Join(cgroupRoot, "unified")
		if !isCgroup2(root) {
			return nil, errors.New("no cgroup2 hierarchy mounted")
		}
	}
	var need []string
	if l.CPUShares != 0 {
		need = append(need, "cpu")
	}
	if l.MemoryBytes != 0 {
		need = append(need, "memory")
	}
	// Where to create the session's cgroup: <root>/karapace (root can), else beside our
	// own cgroup, inside a subtree delegated to the user (systemd's user@.service).
	parents := []string{filepath.Join(root, cgroupParent)}
	if own, err := ownCgroup2(); err == nil && own != "/" {
		parents = append(parents, filepath.Join(root, filepath.Dir(own)))
	}
	var errs []string
	for _, parent := range parents {
		cg, err := cgroup2Under(root, parent, name, need, l)
		if err == nil {
			return cg, nil
		}
		errs = append(errs, err.Error())
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// ownCgroup2 is this process's cgroup v2 path ("0::/path" in /proc/self/cgroup).
func ownCgroup2() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Clean(p), nil
		}
	}
	return "", errors.New("not in a cgroup v2 hierarchy")
}

func cgroup2Under(root, parent, name string, need []string, l sandbox.Limits) (*cgroup, error) {
	if parent == filepath.Join(root, cgroupParent) {
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return nil, err
		}
		if err := enableControllers(root, need); err != nil {
			return nil, err
		}
	}
	if err := enableControllers(parent, need); err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	cg := &cgroup{dirs: []string{dir}}
	if l.CPUShares != 0 {
		if err := writeKnob(dir, "cpu.weight", cpuWeight(l.CPUShares)); err != nil {
			cg.remove()
			return nil, err
		}
	}
	if l.MemoryBytes != 0 {
		if err := writeKnob(dir, "memory.max", l.MemoryBytes); err != nil {
			cg.remove()
			return nil, err
		}
	}
	return cg, nil
}

// enableControllers makes the controllers available to dir's children: already there,
// or enabled now.
func enableControllers(dir string, need []string) error {
	cur, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return err
	}
	have := strings.Fields(string(cur))
	var missing []string
	for _, c := range need {
		if !contains(have, c) {
			missing = append(missing, "+"+c)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	avail, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	for _, c := range need {
		if !contains(strings.Fields(string(avail)), c) {
			return fmt.Errorf("controller %s not available in %s", c, dir)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(missing, " ")), 0); err != nil {
		return fmt.Errorf("enable %s in %s: %w", strings.Join(missing, " "), dir, err)
	}
	return nil
}

func newCgroup1(name string, l sandbox.Limits) (*cgroup, error) {
	type knob struct {
		controller, file string
		value            uint64
	}
	var knobs []knob
	if l.CPUShares != 0 {
		knobs = append(knobs, knob{"cpu", "cpu.shares", min(max(l.CPUShares, 2), 262144)})
	}
	if l.MemoryBytes != 0 {
		knobs = append(knobs, knob{"memory", "memory.limit_in_bytes", l.MemoryBytes})
	}
	cg := &cgroup{}
	for _, k := range knobs {
		mnt := filepath.Join(cgroupRoot, k.controller)
		if _, err := os.Stat(filepath.Join(mnt, k.file)); err != nil {
			cg.remove()
			return nil, fmt.Errorf("no v1 %s hierarchy at %s", k.controller, mnt)
		}
		parent := filepath.Join(mnt, cgroupParent)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			cg.remove()
			return nil, err
		}
		dir := filepath.Join(parent, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			cg.remove()
			return nil, err
		}
		cg.dirs = append(cg.dirs, dir)
		if err := writeKnob(dir, k.file, k.value); err != nil {
			cg.remove()
			return nil, err
		}
	}
	return cg, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func writeKnob(dir, file string, v uint64) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(strconv.FormatUint(v, 10)), 0); err != nil {
		return fmt.Errorf("set %s: %w", file, err)
	}
	return nil
}

// join moves pid (and so every process it forks later) into the cgroup.
func (c *cgroup) join(pid int) error {
	if c == nil {
		return nil
	}
	for _, d := range c.dirs {
		if err := os.WriteFile(filepath.Join(d, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("join cgroup %s: %w", d, err)
		}
	}
	return nil
}

// remove deletes the cgroup directories; the kernel refuses while a process is still
// leaving, so it retries briefly.
func (c *cgroup) remove() error {
	if c == nil {
		return nil
	}
	var first error
	for _, d := range c.dirs {
		var err error
		for i := 0; i < 50; i++ {
			err = os.Remove(d)
			if err == nil || errors.Is(err, os.ErrNotExist) {
				err = nil
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err != nil && first == nil {
			first = fmt.Errorf("remove cgroup: %w", err)
		}
	}
	return first
}
