package sandbox

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// Inputs is everything a Plan is computed from. Compute reads the host only through
// Host (and Host.FS), so the same Inputs always give the same Plan.
type Inputs struct {
	EnvID schema.EnvID
	// Name is the environment's name ("" for none); sessions show it in the prompt.
	Name     string
	Manifest schema.Normalized
	// ManifestDir is the manifest file's directory; relative mount host paths resolve
	// against it (against Host.Cwd when empty).
	ManifestDir string
	// Lower are the read-only layers, topmost first; the image rootfs is the last.
	Lower []string
	Upper string
	Work  string
	// ReadOnly mounts the root read-only (a frozen environment).
	ReadOnly bool
	// Build plans a build or resolve step (package installation) instead of a session:
	// no home, no host integration, no manifest mounts, no devices beyond the minimal
	// /dev, no host variables, and network access unless Offline (network_isolation
	// applies to sessions only, so that packages can be installed).
	Build bool
	// Offline isolates the network whatever the manifest says.
	Offline bool
	// Argv is the command; empty means a login shell (sessions only).
	Argv []string
	// Dir is the working directory inside; empty means the home directory for sessions
	// and / for builds.
	Dir string
	TTY bool
	// ExtraEnv are variables the caller sets on purpose (DEBIAN_FRONTEND for a package
	// manager, say). They override the plan's own, but the deny list still applies.
	ExtraEnv map[string]string
	Host     Host
	// UIDMap and GIDMap come from IDMaps; empty means the single mapping 0 -> caller.
	UIDMap []IDMap
	GIDMap []IDMap
	// HostsFile and HostnameFile, when set, are host files the backend wrote for this
	// environment: the host's /etc/hosts plus a line for the environment's hostname,
	// and that hostname, bound read-only at /etc/hosts and /etc/hostname, so the name
	// `hostname` prints resolves (sudo, mail tools) and /etc/hostname agrees with it.
	HostsFile, HostnameFile string
	// SSHAgent binds the host's SSH agent socket ($SSH_AUTH_SOCK, which the deny list
	// keeps out otherwise) into the runtime directory and sets SSH_AUTH_SOCK to it.
	SSHAgent bool
	// AptConf is a host file holding AptSingleIDConf. With the single mapping, a
	// session of an environment with apt gets it at AptSingleIDTarget: apt then keeps
	// root for its downloads instead of switching to _apt, which that mapping cannot map.
	AptConf string
}

// HostsFor is the environment's /etc/hosts (HostsFile): the host's, then the hostname
// on 127.0.1.1 (as Debian's installer writes it), unless the host's already names it.
func HostsFor(hostHosts []byte, hostname string) []byte {
	out := append([]byte(nil), hostHosts...)
	for _, line := range strings.Split(string(hostHosts), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && !strings.HasPrefix(f[0], "#") && slices.Contains(f[1:], hostname) {
			return out
		}
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	return append(out, "127.0.1.1\t"+hostname+"\n"...)
}

// AptSingleIDConf is what AptConf holds, and AptSingleIDTarget where it is bound.
const (
	AptSingleIDConf   = "// Karapace: only one id is mapped here, so apt cannot switch to _apt.\nAPT::Sandbox::User \"root\";\n"
	AptSingleIDTarget = "/etc/apt/apt.conf.d/99karapace-single-id"
)

// Hostname is the environment's hostname: karapace-<short id>.
func Hostname(id schema.EnvID) string { return "karapace-" + id.Short() }

// RuntimeDir is the XDG_RUNTIME_DIR inside an environment: /run/user/<host uid>.
func RuntimeDir(uid uint32) string { return "/run/user/" + strconv.FormatUint(uint64(uid), 10) }

// Compute turns Inputs into a Plan, enforcing the security policy: only allow-listed
// host variables pass, manifest mounts must resolve under the allowed roots, devices
// appear only when [hardware] asks for them, limits are range-checked.
//
// Mount order is fixed: /proc, /sys, /dev and its contents, requested devices, /tmp,
// the X11 socket directory, home, resolv.conf and hosts, the runtime directory and its
// sockets, then the manifest's mounts. The launcher creates each mount point (an empty
// file when Mount.File, a directory otherwise, with missing parents) just before
// mounting on it, and skips Optional mounts whose source has disappeared.
func Compute(in Inputs) (*Plan, error) {
	h := in.Host
	if h.FS == nil {
		return nil, errors.New("sandbox: Host.FS is nil")
	}
	if in.EnvID.IsZero() {
		return nil, errors.New("sandbox: EnvID is zero")
	}
	if len(in.Lower) == 0 || in.Upper == "" || in.Work == "" {
		return nil, errors.New("sandbox: root needs at least one lower layer, an upper and a work directory")
	}
	for _, p := range append([]string{in.Upper, in.Work}, in.Lower...) {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("sandbox: root layer path %q is not absolute", p)
		}
		// The overlay option string separates with ',' and ':'.
		if strings.ContainsAny(p, ",:\x00\n") {
			return nil, fmt.Errorf("sandbox: root layer path %q holds ',', ':' or a control character", p)
		}
	}
	limits, err := CheckLimits(in.Manifest)
	if err != nil {
		return nil, err
	}
	var userMounts []ResolvedMount
	if !in.Build {
		userMounts, err = CheckMounts(in.Manifest.Mounts, in.ManifestDir, h)
		if err != nil {
			return nil, err
		}
		for _, m := range userMounts {
			if m.Kind == Missing {
				return nil, fmt.Errorf("%w: mount '%s': %s does not exist on the host; create it (mkdir -p '%s') or change [mounts] %s in the manifest",
					runtime.ErrMountMissing, m.Label, m.Source, m.Source, m.Label)
			}
		}
	}

	hostname := Hostname(in.EnvID)
	p := &Plan{
		Root: Root{
			Lower:    append([]string(nil), in.Lower...),
			Upper:    in.Upper,
			Work:     in.Work,
			ReadOnly: in.ReadOnly,
		},
		Hostname:         hostname,
		NetworkIsolation: in.Offline || (!in.Build && in.Manifest.NetworkIsolation),
		UIDMap:           idMapOrSingle(in.UIDMap, h.UID),
		GIDMap:           idMapOrSingle(in.GIDMap, h.GID),
		Limits:           limits,
		TTY:              in.TTY,
	}
	p.Security = SecurityFor(p.UIDMap)

	env := map[string]string{
		"PATH":              DefaultPath,
		"HOSTNAME":          hostname,
		"KARAPACE_ENV":      "1",
		"KARAPACE_HOSTNAME": hostname,
	}
	home := usableHome(h)
	shell := loginShell(h.FS, in)
	if in.Build {
		env["HOME"] = "/root"
		env["USER"] = "root"
		env["LOGNAME"] = "root"
		env["SHELL"] = "/bin/sh"
	} else {
		for k, v := range FilterEnv(h.Env) {
			env[k] = v
		}
		env["HOME"] = h.Home
		env["USER"] = h.User
		env["LOGNAME"] = h.User
		env["SHELL"] = shell
		if env["TERM"] == "" && in.TTY {
			env["TERM"] = "xterm-256color"
		}
		// The prompt names the environment: Debian's and Ubuntu's bashrc show
		// debian_chroot, Fedora's keeps an exported PS1, and KARAPACE_ENV_NAME is there
		// for any other prompt.
		label := in.Name
		if label == "" {
			label = in.EnvID.Short()
		}
		env["KARAPACE_ENV_NAME"] = label
		env["debian_chroot"] = label
		env["PS1"] = `(` + label + `) \u@\h:\w\$ `
	}

	p.Mounts = baseMounts(p.NetworkIsolation, in.TTY)
	if !in.Build {
		p.Mounts = append(p.Mounts, deviceMounts(in.Manifest, h.FS)...)
	}
	p.Mounts = append(p.Mounts, Mount{Type: "tmpfs", Source: "tmpfs", Destination: "/tmp", Options: []string{"nosuid", "nodev", "mode=1777"}})
	if !in.Build {
		p.Mounts = append(p.Mounts, x11Mounts(h, env)...)
		if home != "" {
			p.Mounts = append(p.Mounts, Mount{Type: "bind", Source: home, Destination: h.Home, Options: []string{"rbind", "nosuid", "nodev"}})
		}
	}
	for _, f := range []struct{ dest, own string }{{"/etc/resolv.conf", ""}, {"/etc/hosts", in.HostsFile}, {"/etc/hostname", in.HostnameFile}} {
		src := f.own
		if src == "" && f.dest != "/etc/hostname" {
			r, err := resolveExisting(h.FS, f.dest)
			if err != nil || h.FS.Kind(r) != File {
				continue
			}
			src = r
		}
		if src != "" {
			p.Mounts = append(p.Mounts, Mount{Type: "bind", Source: src, Destination: f.dest, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}, File: true, Optional: true})
		}
	}
	if !in.Build {
		if in.SSHAgent && h.FS.Kind(filepath.Clean(h.Env["SSH_AUTH_SOCK"])) != Socket {
			return nil, fmt.Errorf("%w: the SSH agent was asked for, but SSH_AUTH_SOCK (%q) names no socket: start an agent (eval $(ssh-agent)) or leave out --ssh-agent", runtime.ErrPolicy, h.Env["SSH_AUTH_SOCK"])
		}
		p.Mounts = append(p.Mounts, runtimeDirMounts(in.Manifest, h, env, in.SSHAgent)...)
		for _, m := range userMounts {
			p.Mounts = append(p.Mounts, Mount{Type: "bind", Source: m.Source, Destination: m.ContainerPath, Options: []string{"rbind", "nosuid", "nodev"}, File: m.Kind != Dir})
		}
		if in.AptConf != "" && singleMapping(p.UIDMap) && hasPath(h.FS, in, "etc/apt/apt.conf.d", Dir) {
			p.Mounts = append(p.Mounts, Mount{Type: "bind", Source: in.AptConf, Destination: AptSingleIDTarget, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}, File: true, Optional: true})
		}
	}

	// The manifest's [env], for sessions (a build step's variables are the package
	// manager's), then the caller's own (exec -e), which win.
	if !in.Build {
		for _, k := range sortedKeys(in.Manifest.Env) {
			if EnvDenied(k) {
				return nil, fmt.Errorf("%w: variable %s in the manifest's [env] is on the deny list", runtime.ErrPolicy, k)
			}
			env[k] = in.Manifest.Env[k]
		}
	}
	for k, v := range in.ExtraEnv {
		if !validEnvKey(k) || strings.ContainsRune(v, 0) {
			return nil, fmt.Errorf("%w: variable %q is not a valid name or holds a NUL byte", runtime.ErrPolicy, k)
		}
		if EnvDenied(k) {
			return nil, fmt.Errorf("%w: variable %s is on the deny list", runtime.ErrPolicy, k)
		}
		env[k] = v
	}
	p.Env = sortedEnv(env)

	p.Argv = append([]string(nil), in.Argv...)
	if len(p.Argv) == 0 {
		if in.Build {
			return nil, fmt.Errorf("%w: a build step needs a command", runtime.ErrExecFailed)
		}
		p.Argv = []string{shell, "-l"}
	}
	for _, a := range p.Argv {
		if strings.ContainsRune(a, 0) {
			return nil, fmt.Errorf("%w: argument %q holds a NUL byte", runtime.ErrExecFailed, a)
		}
	}
	p.Dir = in.Dir
	if p.Dir == "" {
		p.Dir = "/"
		if !in.Build {
			p.Dir = sessionDir(h, home, userMounts)
		}
	}
	if !filepath.IsAbs(p.Dir) || filepath.Clean(p.Dir) != p.Dir {
		return nil, fmt.Errorf("%w: working directory %q must be an absolute clean path", runtime.ErrExecFailed, p.Dir)
	}
	return p, nil
}

// sessionDir is where a session starts, as in distrobox and toolbx: the caller's
// current directory when the session sees it (inside a [mounts] source, at its container
// path, the most specific mount winning; or inside the home, which is bound at the same
// path), else the home directory, else /.
func sessionDir(h Host, home string, mounts []ResolvedMount) string {
	fallback := "/"
	if home != "" {
		fallback = h.Home
	}
	if !filepath.IsAbs(h.Cwd) {
		return fallback
	}
	cwd, err := resolveExisting(h.FS, filepath.Clean(h.Cwd))
	if err != nil {
		return fallback
	}
	best, dir := -1, ""
	for _, m := range mounts {
		if m.Kind == Dir && under(cwd, m.Source) && len(m.Source) > best {
			best, dir = len(m.Source), filepath.Join(m.ContainerPath, strings.TrimPrefix(cwd, m.Source))
		}
	}
	if dir != "" {
		return dir
	}
	if home != "" && under(cwd, home) {
		return filepath.Join(h.Home, strings.TrimPrefix(cwd, home))
	}
	return fallback
}

func idMapOrSingle(m []IDMap, id uint32) []IDMap {
	if len(m) > 0 {
		return append([]IDMap(nil), m...)
	}
	return []IDMap{{ContainerID: 0, HostID: id, Size: 1}}
}

// usableHome returns the resolved host home directory when it can be mounted, or ""
// (a missing home, "/", or a home inside the trees the sandbox manages).
func usableHome(h Host) string {
	if !filepath.IsAbs(h.Home) || filepath.Clean(h.Home) != h.Home || h.Home == "/" {
		return ""
	}
	for _, d := range deniedTargets {
		if under(h.Home, d) {
			return ""
		}
	}
	src, err := resolveExisting(h.FS, h.Home)
	if err != nil || src == "/" || h.FS.Kind(src) != Dir {
		return ""
	}
	return src
}

// loginShell is bash when the environment has it, else sh.
func loginShell(fsys FS, in Inputs) string {
	if hasPath(fsys, in, "usr/bin/bash", File) || hasPath(fsys, in, "bin/bash", File) {
		return "/bin/bash"
	}
	return "/bin/sh"
}

// hasPath reports whether the environment's root has rel as a kind: upper is searched
// before the lower layers, since a package build may have made it.
func hasPath(fsys FS, in Inputs, rel string, kind Kind) bool {
	for _, layer := range append([]string{in.Upper}, in.Lower...) {
		if fsys.Kind(filepath.Join(layer, rel)) == kind {
			return true
		}
	}
	return false
}

// sortedKeys are m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// singleMapping reports whether m maps one id only (no subordinate range).
func singleMapping(m []IDMap) bool { return len(m) == 1 && m[0].Size == 1 }

// baseMounts are /proc, /sys and the minimal /dev. Without a network namespace of its
// own, the sandbox may not mount a fresh sysfs (the kernel ties sysfs to the network
// namespace's owner), so the host's /sys is bound read-only instead. /dev/tty is there
// only for a session with a terminal of its own (a pty): every other session runs in a
// new session with no controlling terminal, where /dev/tty could only name the host's.
func baseMounts(netns, tty bool) []Mount {
	ms := []Mount{{Type: "proc", Source: "proc", Destination: "/proc", Options: []string{"nosuid", "nodev", "noexec"}}}
	if netns {
		ms = append(ms, Mount{Type: "sysfs", Source: "sysfs", Destination: "/sys", Options: []string{"nosuid", "nodev", "noexec", "ro"}})
	} else {
		ms = append(ms, Mount{Type: "bind", Source: "/sys", Destination: "/sys", Options: []string{"rbind", "nosuid", "nodev", "noexec", "ro"}})
	}
	ms = append(ms, Mount{Type: "tmpfs", Source: "tmpfs", Destination: "/dev", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}})
	devs := []string{"null", "zero", "full", "random", "urandom"}
	if tty {
		devs = append(devs, "tty")
	}
	for _, d := range devs {
		ms = append(ms, Mount{Type: "bind", Source: "/dev/" + d, Destination: "/dev/" + d, Options: []string{"bind", "nosuid", "noexec"}, File: true})
	}
	ms = append(ms,
		Mount{Type: "devpts", Source: "devpts", Destination: "/dev/pts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
		Mount{Type: "tmpfs", Source: "shm", Destination: "/dev/shm", Options: []string{"nosuid", "nodev", "noexec", "mode=1777", "size=65536k"}},
		Mount{Type: "mqueue", Source: "mqueue", Destination: "/dev/mqueue", Options: []string{"nosuid", "nodev", "noexec"}},
	)
	return ms
}

// gpuDevices are bound with hardware.gpu, when present on the host.
var gpuDevices = []string{"/dev/dri", "/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-modeset", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"}

func deviceMounts(n schema.Normalized, fsys FS) []Mount {
	var devs []string
	if n.HardwareGPU {
		devs = append(devs, gpuDevices...)
	}
	if n.HardwareAudio {
		devs = append(devs, "/dev/snd")
	}
	var ms []Mount
	for _, d := range devs {
		switch fsys.Kind(d) {
		case Dir:
			ms = append(ms, Mount{Type: "bind", Source: d, Destination: d, Options: []string{"rbind", "nosuid", "noexec"}, Optional: true})
		case Device:
			ms = append(ms, Mount{Type: "bind", Source: d, Destination: d, Options: []string{"bind", "nosuid", "noexec"}, File: true, Optional: true})
		}
	}
	return ms
}

// x11Mounts binds the X11 socket directory (read-only) and passes DISPLAY when the host
// has a display.
func x11Mounts(h Host, env map[string]string) []Mount {
	display := h.Env["DISPLAY"]
	if display == "" || strings.ContainsRune(display, 0) {
		return nil
	}
	env["DISPLAY"] = display
	if h.FS.Kind("/tmp/.X11-unix") != Dir {
		return nil
	}
	return []Mount{{Type: "bind", Source: "/tmp/.X11-unix", Destination: "/tmp/.X11-unix", Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}, Optional: true}}
}

// runtimeDirMounts gives the environment its own XDG_RUNTIME_DIR (a tmpfs at
// /run/user/<uid>) and binds into it the host sockets the session may use: Wayland
// always (under its real WAYLAND_DISPLAY name), the D-Bus session bus always, PipeWire
// and PulseAudio only with hardware.audio. An Xauthority file is bound read-only.
func runtimeDirMounts(n schema.Normalized, h Host, env map[string]string, sshAgent bool) []Mount {
	inside := RuntimeDir(h.UID)
	env["XDG_RUNTIME_DIR"] = inside
	ms := []Mount{{Type: "tmpfs", Source: "tmpfs", Destination: inside, Options: []string{"nosuid", "nodev", "mode=700"}}}
	sock := func(src, rel string) bool {
		if !filepath.IsAbs(src) {
			return false
		}
		src = filepath.Clean(src)
		if h.FS.Kind(src) != Socket {
			return false
		}
		ms = append(ms, Mount{Type: "bind", Source: src, Destination: filepath.Join(inside, rel), Options: []string{"bind", "nosuid", "nodev", "noexec"}, File: true, Optional: true})
		return true
	}
	hostRun := h.Env["XDG_RUNTIME_DIR"]
	if !filepath.IsAbs(hostRun) {
		hostRun = ""
	}
	if wl := h.Env["WAYLAND_DISPLAY"]; wl != "" && !strings.ContainsRune(wl, 0) {
		src := wl
		if !filepath.IsAbs(src) && hostRun != "" {
			src = filepath.Join(hostRun, wl)
		}
		name := filepath.Base(filepath.Clean(wl))
		if name != "." && name != ".." && name != "/" && sock(src, name) {
			env["WAYLAND_DISPLAY"] = name
		}
	}
	if hostRun != "" {
		if n.HardwareAudio {
			sock(filepath.Join(hostRun, "pipewire-0"), "pipewire-0")
			sock(filepath.Join(hostRun, "pulse/native"), "pulse/native")
		}
		if sock(filepath.Join(hostRun, "bus"), "bus") {
			env["DBUS_SESSION_BUS_ADDRESS"] = "unix:path=" + filepath.Join(inside, "bus")
		}
	}
	if sshAgent && sock(h.Env["SSH_AUTH_SOCK"], "ssh-agent") {
		env["SSH_AUTH_SOCK"] = filepath.Join(inside, "ssh-agent")
	}
	if xa := h.Env["XAUTHORITY"]; xa != "" && h.Env["DISPLAY"] != "" && filepath.IsAbs(xa) {
		if src, err := resolveExisting(h.FS, filepath.Clean(xa)); err == nil && h.FS.Kind(src) == File {
			dst := filepath.Join(inside, "Xauthority")
			ms = append(ms, Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"bind", "ro", "nosuid", "nodev", "noexec"}, File: true, Optional: true})
			env["XAUTHORITY"] = dst
		}
	}
	return ms
}

// InputsFor fills the parts of Inputs that come from a backend Spec: identity,
// manifest and its directory, upper and work under spec.EnvDir, read-only and offline.
// The caller adds Lower (the image rootfs), Host, Argv, Dir, TTY, Build and id maps.
func InputsFor(spec *runtime.Spec) Inputs {
	return Inputs{
		EnvID:       spec.EnvID,
		Name:        spec.Name,
		Manifest:    spec.Manifest,
		ManifestDir: spec.ManifestDir,
		Upper:       filepath.Join(spec.EnvDir, "upper"),
		Work:        filepath.Join(spec.EnvDir, "work"),
		ReadOnly:    spec.ReadOnly,
		Offline:     spec.Offline,
	}
}
