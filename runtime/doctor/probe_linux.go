package doctor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime/sandbox"
)

// probeTimeout bounds every child process a probe starts.
const probeTimeout = 10 * time.Second

func userNSAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
}

func readSysctl(name string) string {
	b, err := os.ReadFile(filepath.Join("/proc/sys", strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		return "absent"
	}
	return strings.TrimSpace(string(b))
}

// UserNamespaces starts /bin/true in a new user namespace (0 -> caller).
func UserNamespaces(ctx context.Context, lookPath func(string) (string, error)) Check {
	c := Check{Name: "user_namespaces"}
	tru, err := lookPath("true")
	if err != nil {
		tru = "/bin/true"
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tru)
	cmd.SysProcAttr = userNSAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		c.Detail = fmt.Sprintf("cannot create a user namespace: %v %s(kernel.unprivileged_userns_clone=%s, user.max_user_namespaces=%s)",
			err, strings.TrimSpace(stderr.String())+" ", readSysctl("kernel.unprivileged_userns_clone"), readSysctl("user.max_user_namespaces"))
		c.Fix = fixUserns
		return c
	}
	c.OK = true
	c.Detail = "a process starts in a new user namespace"
	return c
}

// overlayScript runs as uid 0 of a new user and mount namespace. It proves that it is
// not in the host's mount namespace nor the initial user namespace before mounting
// anything (the fail-closed rule of NOTES.md), then mounts an overlay with userxattr
// (or without, for kernels that allow that), writes through it and unmounts.
// $1..$4: lower upper work merged; $5: the caller's mount namespace link.
const overlayScript = `set -eu
[ "$(readlink /proc/self/ns/mnt)" != "$5" ] || { echo "refusing: still in the caller's mount namespace" >&2; exit 90; }
read a b c < /proc/self/uid_map
[ "$a $b $c" != "0 0 4294967295" ] || { echo "refusing: in the initial user namespace" >&2; exit 91; }
mount --make-rprivate /
if mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3,userxattr" "$4" 2>/dev/null; then how=userxattr
else mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$4"; how=plain; fi
cat "$4/lower-file" >/dev/null
echo probe > "$4/upper-file"
umount "$4"
test -f "$2/upper-file"
echo "$how"
`

// KernelOverlay mounts a kernel overlayfs inside a new user namespace, with its upper
// directory on the store's filesystem (the nearest existing ancestor of storeRoot),
// and writes through it.
func KernelOverlay(ctx context.Context, storeRoot string, lookPath func(string) (string, error)) Check {
	c := Check{Name: "overlay_kernel", Fix: fixKernelOverlay}
	base := nearestDir(storeRoot)
	if base == "" || strings.ContainsAny(base, ",:") {
		base = os.TempDir()
	}
	sh, err1 := lookPath("sh")
	_, err2 := lookPath("mount")
	if err1 != nil || err2 != nil {
		c.Detail = "cannot probe: sh or mount(8) is not on PATH"
		c.Fix = "install util-linux (mount) and a POSIX sh"
		return c
	}
	dir, err := os.MkdirTemp(base, ".karapace-doctor-")
	if err != nil {
		// Fall back to the temp dir when the store's filesystem is not writable.
		if dir, err = os.MkdirTemp("", ".karapace-doctor-"); err != nil {
			c.Detail = fmt.Sprintf("cannot create a probe directory: %v", err)
			return c
		}
	}
	defer os.RemoveAll(dir)
	var paths [4]string
	for i, n := range []string{"lower", "upper", "work", "merged"} {
		paths[i] = filepath.Join(dir, n)
		if err := os.Mkdir(paths[i], 0o755); err != nil {
			c.Detail = fmt.Sprintf("cannot create a probe directory: %v", err)
			return c
		}
	}
	if err := os.WriteFile(filepath.Join(paths[0], "lower-file"), []byte("x"), 0o644); err != nil {
		c.Detail = fmt.Sprintf("cannot create a probe file: %v", err)
		return c
	}
	mnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		c.Detail = fmt.Sprintf("cannot read the mount namespace: %v", err)
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, sh, "-c", overlayScript, "sh", paths[0], paths[1], paths[2], paths[3], mnt)
	attr := userNSAttr()
	attr.Cloneflags |= syscall.CLONE_NEWNS
	cmd.SysProcAttr = attr
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		c.Detail = fmt.Sprintf("kernel overlayfs does not mount in a user namespace on %s: %v: %s", base, err, strings.TrimSpace(stderr.String()))
		return c
	}
	c.OK, c.Fix = true, ""
	c.Detail = fmt.Sprintf("kernel overlayfs mounts in a user namespace (%s) on %s", strings.TrimSpace(stdout.String()), base)
	return c
}

// FuseOverlay looks for fuse-overlayfs and fusermount3 (or fusermount) and opens
// /dev/fuse for reading and writing.
func FuseOverlay(lookPath func(string) (string, error)) Check {
	c := Check{Name: "overlay_fuse", Fix: fixFuse}
	var missing []string
	fo, err := lookPath("fuse-overlayfs")
	if err != nil {
		missing = append(missing, "fuse-overlayfs")
	}
	fm, err := lookPath("fusermount3")
	if err != nil {
		if fm, err = lookPath("fusermount"); err != nil {
			missing = append(missing, "fusermount3")
		}
	}
	if len(missing) > 0 {
		c.Detail = "not installed: " + strings.Join(missing, ", ")
		return c
	}
	f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0)
	if err != nil {
		c.Detail = fmt.Sprintf("%s is installed but /dev/fuse is not usable: %v", fo, err)
		return c
	}
	f.Close()
	c.OK, c.Fix = true, ""
	c.Detail = fmt.Sprintf("%s and %s are installed and /dev/fuse opens", fo, fm)
	return c
}

// IDMapping reports whether sessions get a full id mapping (subordinate ranges and the
// newuidmap/newgidmap helpers) or the single mapping.
func IDMapping(src sandbox.IDSource) Check {
	c := Check{Name: "id_mapping"}
	m, err := sandbox.IDMaps(src)
	if err != nil {
		c.Detail = err.Error()
		c.Fix = "make /etc/subuid and /etc/subgid readable"
		return c
	}
	c.Detail = m.Reason
	if !m.Full {
		// Not a warning: package installs that create users or chown (openssh-client,
		// man-db) fail in every environment built with the single mapping.
		c.Fix = m.Fix
		return c
	}
	c.OK = true
	return c
}

// mountEntry is one line of /proc/self/mountinfo, as far as cgroups need it.
type mountEntry struct {
	Point  string
	FSType string
	Super  []string // super options
}

// unescapeMount decodes the octal escapes (\040 and friends) of mountinfo fields.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// parseMountInfo reads the cgroup and cgroup2 mounts of a mountinfo file.
func parseMountInfo(data []byte) []mountEntry {
	var out []mountEntry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		f, g := strings.Fields(pre), strings.Fields(post)
		if len(f) < 5 || len(g) < 3 || (g[0] != "cgroup" && g[0] != "cgroup2") {
			continue
		}
		out = append(out, mountEntry{Point: unescapeMount(f[4]), FSType: g[0], Super: strings.Split(g[2], ",")})
	}
	return out
}

// parseProcCgroup maps each v1 controller (and "" for v2) to the process's cgroup path.
func parseProcCgroup(data []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "" {
			out[""] = f[2]
			continue
		}
		for _, ctrl := range strings.Split(f[1], ",") {
			out[ctrl] = f[2]
		}
	}
	return out
}

// tryChild creates and removes a child cgroup in dir.
func tryChild(dir string, inspect func(child string)) error {
	child := filepath.Join(dir, fmt.Sprintf("karapace-doctor-%d", os.Getpid()))
	if err := os.Mkdir(child, 0o755); err != nil {
		return err
	}
	if inspect != nil {
		inspect(child)
	}
	return os.Remove(child)
}

// Cgroups checks where resource limits can be applied: a child cgroup of the caller's
// own cgroup with the cpu and memory controllers, under cgroup v2 or v1 (both are
// probed: hybrid hosts have v1 controllers and an almost empty v2).
func Cgroups(mountInfo, procCgroup string) Check {
	c := Check{Name: "cgroups", Fix: fixCgroups}
	mi, err1 := os.ReadFile(mountInfo)
	pc, err2 := os.ReadFile(procCgroup)
	if err1 != nil || err2 != nil {
		c.Detail = fmt.Sprintf("cannot read %s or %s", mountInfo, procCgroup)
		c.Warn = true
		return c
	}
	mounts, paths := parseMountInfo(mi), parseProcCgroup(pc)
	var notes []string
	v2ok, v1ok := false, true
	if p, ok := paths[""]; ok {
		for _, m := range mounts {
			if m.FSType != "cgroup2" {
				continue
			}
			var ctrls string
			err := tryChild(filepath.Join(m.Point, p), func(child string) {
				b, _ := os.ReadFile(filepath.Join(child, "cgroup.controllers"))
				ctrls = strings.TrimSpace(string(b))
			})
			switch {
			case err != nil:
				notes = append(notes, fmt.Sprintf("v2 %s: not writable (%v)", m.Point, errors.Unwrap(err)))
			case hasWords(ctrls, "cpu", "memory"):
				v2ok = true
				notes = append(notes, fmt.Sprintf("v2 %s: writable, cpu and memory delegated", m.Point))
			default:
				if ctrls == "" {
					ctrls = "none"
				}
				notes = append(notes, fmt.Sprintf("v2 %s: writable but controllers are %s", m.Point, ctrls))
			}
			break
		}
	}
	for _, ctrl := range []string{"cpu", "memory"} {
		var point string
		for _, m := range mounts {
			if m.FSType == "cgroup" && hasWords(strings.Join(m.Super, " "), ctrl) {
				point = m.Point
				break
			}
		}
		p, ok := paths[ctrl]
		if point == "" || !ok {
			v1ok = false
			continue
		}
		if err := tryChild(filepath.Join(point, p), nil); err != nil {
			v1ok = false
			notes = append(notes, fmt.Sprintf("v1 %s: not writable (%v)", ctrl, errors.Unwrap(err)))
			continue
		}
		notes = append(notes, fmt.Sprintf("v1 %s: writable", ctrl))
	}
	if len(notes) == 0 {
		notes = append(notes, "no cgroup filesystem mounted")
	}
	c.Detail = strings.Join(notes, "; ")
	if v2ok || v1ok {
		c.OK, c.Fix = true, ""
		return c
	}
	c.Warn = true
	return c
}

func hasWords(s string, words ...string) bool {
	have := map[string]bool{}
	for _, w := range strings.Fields(s) {
		have[w] = true
	}
	for _, w := range words {
		if !have[w] {
			return false
		}
	}
	return true
}

// OCIRuntime finds the OCI runtime the oci backend would use: $KARAPACE_OCI_RUNTIME
// when set, else the first of crun, runc and youki that answers --version.
func OCIRuntime(ctx context.Context, getenv func(string) string, lookPath func(string) (string, error)) Check {
	c := Check{Name: "oci_runtime", Warn: true, Fix: fixOCI}
	names := []string{"crun", "runc", "youki"}
	if want := getenv("KARAPACE_OCI_RUNTIME"); want != "" {
		names = []string{want}
	}
	var tried []string
	for _, n := range names {
		p, err := lookPath(n)
		if err != nil {
			tried = append(tried, n+": not found")
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		out, err := exec.CommandContext(cctx, p, "--version").Output()
		cancel()
		if err != nil {
			tried = append(tried, fmt.Sprintf("%s: --version failed: %v", p, err))
			continue
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
		c.OK, c.Warn, c.Fix = true, false, ""
		c.Detail = fmt.Sprintf("%s (%s)", p, first)
		return c
	}
	c.Detail = strings.Join(tried, "; ")
	return c
}

// nearestDir returns path if it is a directory, else its nearest existing ancestor
// directory ("" when none).
func nearestDir(path string) string {
	if path == "" {
		return ""
	}
	p := filepath.Clean(path)
	for {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			return p
		}
		parent := filepath.Dir(p)
		if parent == p {
			return ""
		}
		p = parent
	}
}

// StoreWritable creates and removes a file in the store (or, before the first build,
// in the directory the store will be created under).
func StoreWritable(storeRoot string) Check {
	c := Check{Name: "store_writable", Fix: "make the store directory writable by you, or choose another with --store / KARAPACE_STORE"}
	if storeRoot == "" {
		c.Detail = "no store path given"
		return c
	}
	fi, err := os.Stat(storeRoot)
	target := storeRoot
	switch {
	case err == nil && !fi.IsDir():
		c.Detail = fmt.Sprintf("%s exists and is not a directory", storeRoot)
		return c
	case errors.Is(err, fs.ErrNotExist):
		target = nearestDir(storeRoot)
	case err != nil:
		c.Detail = err.Error()
		return c
	}
	if target == "" {
		c.Detail = fmt.Sprintf("no existing ancestor of %s", storeRoot)
		return c
	}
	f, err := os.CreateTemp(target, ".karapace-doctor-")
	if err != nil {
		c.Detail = fmt.Sprintf("%s is not writable: %v", target, err)
		return c
	}
	f.Close()
	os.Remove(f.Name())
	c.OK, c.Fix = true, ""
	if target == storeRoot {
		c.Detail = fmt.Sprintf("%s is writable", storeRoot)
	} else {
		c.Detail = fmt.Sprintf("%s does not exist yet; %s is writable, so it can be created", storeRoot, target)
	}
	return c
}

// Disk space thresholds (the original's: below 100 MB fails, below 1 GiB warns).
const (
	diskFailMB = 100
	diskWarnMB = 1024
)

// DiskSpace reports the free space available to the caller on the store's filesystem.
func DiskSpace(storeRoot string) Check {
	c := Check{Name: "disk_space", Fix: "free disk space on the store's filesystem, or run karapace gc"}
	dir := nearestDir(storeRoot)
	if dir == "" {
		c.Detail = "no store path given"
		return c
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		c.Detail = fmt.Sprintf("statfs %s: %v", dir, err)
		return c
	}
	return diskCheck(c, st.Bavail*uint64(st.Bsize)>>20)
}

func diskCheck(c Check, mb uint64) Check {
	switch {
	case mb < diskFailMB:
		c.Detail = fmt.Sprintf("Low disk space: %d MB available", mb)
	case mb < diskWarnMB:
		c.Warn = true
		c.Detail = fmt.Sprintf("Disk space: %d MB available (consider freeing space)", mb)
	default:
		c.OK, c.Fix = true, ""
		c.Detail = fmt.Sprintf("Disk space: %d GB available", mb>>10)
	}
	return c
}

// TerminalInjection reports whether the kernel lets a process push input into its
// controlling terminal (TIOCSTI), from the value of dev.tty.legacy_tiocsti ("absent" on
// kernels before 6.2, which always allow it). Karapace sessions cannot either way: each
// runs in a session of its own, with a seccomp filter refusing TIOCSTI and TIOCLINUX;
// the check tells the user what other programs on the host can do.
func TerminalInjection(legacyTIOCSTI string) Check {
	c := Check{Name: "terminal_injection", OK: true}
	switch legacyTIOCSTI {
	case "0":
		c.Detail = "TIOCSTI is disabled system-wide (dev.tty.legacy_tiocsti = 0)"
	case "absent":
		c.Detail = "TIOCSTI is enabled system-wide (this kernel has no dev.tty.legacy_tiocsti); Karapace sessions are refused it by their own session and seccomp filter"
	default:
		c.Detail = fmt.Sprintf("TIOCSTI is enabled system-wide (dev.tty.legacy_tiocsti = %s; set it to 0 to disable it for every program); Karapace sessions are refused it by their own session and seccomp filter", legacyTIOCSTI)
	}
	return c
}
