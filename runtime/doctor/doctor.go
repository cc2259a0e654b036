// Package doctor checks, by trying them, the host facilities Karapace's runtime needs:
// user namespaces, overlayfs inside a user namespace (kernel or fuse-overlayfs), the
// subordinate id ranges and helpers of a full id mapping, writable cgroups for resource
// limits, an OCI runtime, and a writable store with free space. Each failing check says
// how to fix it on Debian/Ubuntu and Fedora/openSUSE.
//
// doctor imports runtime/sandbox (for the id mapping rules) and nothing above runtime.
// Its probes start short-lived child processes in new namespaces; they never mount
// anything in the caller's own mount namespace.
package doctor

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"

	"github.com/karapace/karapace/runtime/sandbox"
)

// Check is one result.
type Check struct {
	Name string
	OK   bool
	// Warn marks a failed check that only degrades Karapace (a feature is missing, the
	// rest works); it never makes the host unhealthy. Never set when OK.
	Warn   bool
	Detail string
	// Fix says how to install or fix what is missing (empty when OK).
	Fix string
}

// Status is "pass", "warn" or "fail", the vocabulary of `karapace doctor --json`.
func (c Check) Status() string {
	switch {
	case c.OK:
		return "pass"
	case c.Warn:
		return "warn"
	default:
		return "fail"
	}
}

// Healthy reports whether no check failed (warnings are fine).
func Healthy(checks []Check) bool {
	for _, c := range checks {
		if !c.OK && !c.Warn {
			return false
		}
	}
	return true
}

// Options configure Run. Zero fields take the real host's values.
type Options struct {
	// StoreRoot is the store directory; it need not exist yet (doctor never creates it).
	StoreRoot string
	Getenv    func(string) string
	LookPath  func(string) (string, error)
	// IDs says whose id mapping to check; zero: the caller (from sandbox.HostFromOS).
	IDs sandbox.IDSource
	// MountInfo and ProcCgroup are /proc/self/mountinfo and /proc/self/cgroup.
	MountInfo  string
	ProcCgroup string
	Logger     *slog.Logger
}

func (o *Options) defaults() {
	if o.Getenv == nil {
		o.Getenv = os.Getenv
	}
	if o.LookPath == nil {
		o.LookPath = exec.LookPath
	}
	if o.IDs.User == "" {
		h := sandbox.HostFromOS()
		o.IDs.User, o.IDs.UID, o.IDs.GID = h.User, h.UID, h.GID
	}
	if o.IDs.LookPath == nil {
		o.IDs.LookPath = o.LookPath
	}
	if o.MountInfo == "" {
		o.MountInfo = "/proc/self/mountinfo"
	}
	if o.ProcCgroup == "" {
		o.ProcCgroup = "/proc/self/cgroup"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Run performs every check, in a fixed order.
func Run(ctx context.Context, o Options) []Check {
	o.defaults()
	userns := UserNamespaces(ctx, o.LookPath)
	kernel := KernelOverlay(ctx, o.StoreRoot, o.LookPath)
	fuse := FuseOverlay(o.LookPath)
	// The namespace backend needs one of the two overlay implementations.
	if kernel.OK && !fuse.OK {
		fuse.Warn = true
		fuse.Detail += " (not needed: kernel overlayfs works)"
	}
	if fuse.OK && !kernel.OK {
		kernel.Warn = true
		kernel.Detail += " (fuse-overlayfs is used instead, about 3x slower to start)"
	}
	checks := []Check{
		userns,
		kernel,
		fuse,
		IDMapping(o.IDs),
		Cgroups(o.MountInfo, o.ProcCgroup),
		OCIRuntime(ctx, o.Getenv, o.LookPath),
		StoreWritable(o.StoreRoot),
		DiskSpace(o.StoreRoot),
		TerminalInjection(readSysctl("dev.tty.legacy_tiocsti")),
	}
	for _, c := range checks {
		o.Logger.Debug("doctor check", "name", c.Name, "status", c.Status(), "detail", c.Detail)
	}
	return checks
}

// Format writes the report as `karapace doctor` prints it.
func Format(w io.Writer, checks []Check) error {
	var b strings.Builder
	b.WriteString("Karapace Doctor\n\n")
	for _, c := range checks {
		icon := "✓"
		switch c.Status() {
		case "warn":
			icon = "⚠"
		case "fail":
			icon = "✗"
		}
		fmt.Fprintf(&b, "  %s %s: %s\n", icon, c.Name, c.Detail)
		if !c.OK && c.Fix != "" {
			for _, l := range strings.Split(c.Fix, "\n") {
				fmt.Fprintf(&b, "      fix: %s\n", l)
			}
		}
	}
	b.WriteString("\n")
	if Healthy(checks) {
		b.WriteString("All checks passed.\n")
	} else {
		b.WriteString("Some checks failed. See above for details.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Fix texts, with package names for Debian/Ubuntu and Fedora/openSUSE.
const (
	fixUserns = "enable unprivileged user namespaces: sysctl -w kernel.unprivileged_userns_clone=1 (Debian) and user.max_user_namespaces=15000; " +
		"on Ubuntu 24.04 also kernel.apparmor_restrict_unprivileged_userns=0; the kernel needs CONFIG_USER_NS=y"
	fixKernelOverlay = "kernel overlayfs in a user namespace needs Linux 5.11 or newer; otherwise install fuse-overlayfs: " +
		"apt install fuse-overlayfs (Debian/Ubuntu), dnf install fuse-overlayfs (Fedora), zypper install fuse-overlayfs (openSUSE)"
	fixFuse = "apt install fuse-overlayfs fuse3 (Debian/Ubuntu), dnf install fuse-overlayfs fuse3 (Fedora), zypper install fuse-overlayfs fuse3 (openSUSE); " +
		"/dev/fuse must be readable and writable by you (modprobe fuse)"
	fixCgroups = "resource limits need a writable cgroup with the cpu and memory controllers: run under a delegated cgroup " +
		"(systemd-run --user --scope -p Delegate=yes karapace ...), or as root; on cgroup v2 enable delegation of cpu and memory " +
		"(systemctl edit user@.service: [Service] Delegate=cpu memory)"
	fixOCI = "the oci backend needs one of crun, runc or youki: apt install crun (Debian/Ubuntu), dnf install crun (Fedora), " +
		"zypper install crun (openSUSE); set KARAPACE_OCI_RUNTIME to choose one"
)
