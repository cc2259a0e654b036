package oci

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/karapace/karapace/runtime"
)

// EnvRuntime names the environment variable that overrides runtime discovery with a
// runtime name (crun, runc, youki) or a path to its binary.
const EnvRuntime = "KARAPACE_OCI_RUNTIME"

// Candidates are the runtimes tried, in order.
var Candidates = []string{"crun", "runc", "youki"}

// Runtime is the OCI runtime the backend uses, and what it works around on this host.
type Runtime struct {
	Name    string // crun, runc, youki, or the base name of an overridden path
	Path    string
	Version string // the first line of `--version`
	// Override is true when EnvRuntime chose it.
	Override bool
	// HideUnified: the host has hybrid cgroups and the runtime refuses them, so it runs
	// in a private mount namespace where /sys/fs/cgroup/unified is covered.
	HideUnified bool
	// Workarounds describe, one line each, what the backend does differently here.
	Workarounds []string
}

// Host is what runtime selection looks at; zero fields take the real host.
type Host struct {
	Getenv   func(string) string
	LookPath func(string) (string, error)
	// Version runs `<path> --version`.
	Version func(ctx context.Context, path string) (string, error)
	// Hybrid reports whether cgroups are hybrid (v1 at /sys/fs/cgroup, v2 at
	// /sys/fs/cgroup/unified).
	Hybrid func() bool
}

func (h Host) withDefaults() Host {
	if h.Getenv == nil {
		h.Getenv = os.Getenv
	}
	if h.LookPath == nil {
		h.LookPath = exec.LookPath
	}
	if h.Version == nil {
		h.Version = runtimeVersion
	}
	if h.Hybrid == nil {
		h.Hybrid = HybridCgroups
	}
	return h
}

// Select finds the runtime: the override when set (it must work), else the first of
// Candidates on PATH whose `--version` succeeds. Doctor calls it to report which
// runtime is used and what was worked around.
func Select(ctx context.Context, h Host) (Runtime, error) {
	h = h.withDefaults()
	if o := strings.TrimSpace(h.Getenv(EnvRuntime)); o != "" {
		path, err := h.LookPath(o)
		if err != nil {
			return Runtime{}, fmt.Errorf("%w: %s=%s: %w", runtime.ErrBackendUnavailable, EnvRuntime, o, err)
		}
		v, err := h.Version(ctx, path)
		if err != nil {
			return Runtime{}, fmt.Errorf("%w: %s=%s: %s --version: %w", runtime.ErrBackendUnavailable, EnvRuntime, o, path, err)
		}
		rt := Runtime{Name: filepath.Base(path), Path: path, Version: v, Override: true}
		rt.workarounds(h)
		return rt, nil
	}
	var tried []string
	for _, name := range Candidates {
		path, err := h.LookPath(name)
		if err != nil {
			continue
		}
		v, err := h.Version(ctx, path)
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s (%v)", path, err))
			continue
		}
		rt := Runtime{Name: name, Path: path, Version: v}
		rt.workarounds(h)
		return rt, nil
	}
	msg := "no OCI runtime found (crun/runc/youki); install one (apt-get install crun) or set " + EnvRuntime
	if len(tried) > 0 {
		msg += "; not working: " + strings.Join(tried, ", ")
	}
	return Runtime{}, fmt.Errorf("%w: %s", runtime.ErrBackendUnavailable, msg)
}

// workarounds decides what this host needs for rt. crun (1.8 at least) refuses hybrid
// cgroups, even with --cgroup-manager=disabled, and runs when it cannot see the v2 mount.
func (rt *Runtime) workarounds(h Host) {
	if !h.Hybrid() {
		return
	}
	if strings.HasPrefix(rt.Name, "crun") {
		rt.HideUnified = true
		rt.Workarounds = append(rt.Workarounds, "hybrid cgroups: crun refuses them, so it runs in a private mount namespace where /sys/fs/cgroup/unified is covered (it then uses cgroup v1)")
	}
}

func runtimeVersion(ctx context.Context, path string) (string, error) {
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line, nil
}

const cgroup2Magic = 0x63677270

// HybridCgroups reports whether /sys/fs/cgroup is a cgroup v1 tree with the v2 hierarchy
// mounted at /sys/fs/cgroup/unified.
func HybridCgroups() bool {
	var root, unified syscall.Statfs_t
	if syscall.Statfs("/sys/fs/cgroup", &root) != nil || syscall.Statfs("/sys/fs/cgroup/unified", &unified) != nil {
		return false
	}
	return root.Type != cgroup2Magic && unified.Type == cgroup2Magic
}
