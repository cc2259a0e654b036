package sandbox

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

var update = flag.Bool("update", false, "rewrite golden files")

var testID = schema.SumString("karapace sandbox test")

// desktopHost has every integration the plan knows: Wayland, X11, PipeWire, PulseAudio,
// the session bus, an Xauthority file, a GPU and a sound card.
func desktopHost() Host {
	h := aliceHost()
	f := h.FS.(*fakeFS)
	f.add("/run/user/1000/wayland-1", Socket).
		add("/run/user/1000/pipewire-0", Socket).
		add("/run/user/1000/pulse/native", Socket).
		add("/run/user/1000/bus", Socket).
		add("/run/user/1000/xauth_abc", File).
		add("/tmp/.X11-unix/X0", Socket).
		add("/dev/dri/card0", Device).
		add("/dev/nvidia0", Device).
		add("/dev/snd/controlC0", Device).
		add("/etc/resolv.conf", File).
		add("/etc/hosts", File)
	for _, d := range []string{"null", "zero", "full", "random", "urandom", "tty"} {
		f.add("/dev/"+d, Device)
	}
	h.Env = map[string]string{
		"TERM": "xterm-kitty", "LANG": "en_US.UTF-8", "LC_TIME": "de_DE.UTF-8",
		"PATH": "/home/alice/bin:/usr/bin", "SHELL": "/usr/bin/zsh",
		"SSH_AUTH_SOCK": "/run/user/1000/ssh", "AWS_SECRET_ACCESS_KEY": "s3cr3t",
		"GITHUB_TOKEN": "ghp_x", "LD_PRELOAD": "/evil.so", "EDITOR": "vim",
		"WAYLAND_DISPLAY": "wayland-1", "DISPLAY": ":0", "XAUTHORITY": "/run/user/1000/xauth_abc",
		"XDG_RUNTIME_DIR": "/run/user/1000", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
		"HOME": "/home/alice", "USER": "alice",
	}
	return h
}

func baseInputs(h Host) Inputs {
	return Inputs{
		EnvID:       testID,
		ManifestDir: "/home/alice/proj",
		Lower:       []string{"/store/images/debian/rootfs"},
		Upper:       "/store/env/x/upper",
		Work:        "/store/env/x/work",
		Host:        h,
	}
}

func destinations(p *Plan) []string {
	var ds []string
	for _, m := range p.Mounts {
		ds = append(ds, m.Destination)
	}
	return ds
}

func envMap(p *Plan) map[string]string {
	m := map[string]string{}
	for _, kv := range p.Env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

func mustCompute(t *testing.T, in Inputs) *Plan {
	t.Helper()
	p, err := Compute(in)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	return p
}

func TestGoldenPlans(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	desktop := baseInputs(desktopHost())
	desktop.Manifest = schema.Normalized{
		BaseImage: "debian/bookworm", HardwareGPU: true, HardwareAudio: true,
		Mounts: []schema.Mount{
			{Label: "notes", HostPath: "~/notes.txt", ContainerPath: "/notes.txt"},
			{Label: "src", HostPath: "./src", ContainerPath: "/workspace"},
		},
		CPUShares: u(512), MemoryLimitMB: u(2048),
	}
	desktop.TTY = true
	desktop.UIDMap = []IDMap{{0, 1000, 1}, {1, 100000, 65536}}
	desktop.GIDMap = []IDMap{{0, 1000, 1}, {1, 100000, 65536}}
	desktop.Host.FS.(*fakeFS).add("/store/images/debian/rootfs/usr/bin/bash", File)

	minimal := baseInputs(aliceHost())
	minimal.Argv = []string{"make", "-j2"}
	minimal.Dir = "/home/alice/proj"

	build := baseInputs(desktopHost())
	build.Build = true
	build.Manifest = desktop.Manifest
	build.Manifest.NetworkIsolation = true
	build.Argv = []string{"apt-get", "install", "-y", "git"}
	build.ExtraEnv = map[string]string{"DEBIAN_FRONTEND": "noninteractive"}

	frozen := baseInputs(aliceHost())
	frozen.ReadOnly = true
	frozen.Manifest.NetworkIsolation = true
	frozen.Argv = []string{"true"}

	for name, in := range map[string]Inputs{"desktop": desktop, "minimal": minimal, "build": build, "frozen-isolated": frozen} {
		t.Run(name, func(t *testing.T) {
			p := mustCompute(t, in)
			got, err := json.MarshalIndent(p, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join("testdata", "plan-"+name+".json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("plan differs from %s (run with -update after checking):\n%s", path, got)
			}
			// Same inputs, same plan.
			again, _ := json.Marshal(mustCompute(t, in))
			once, _ := json.Marshal(p)
			if !bytes.Equal(again, once) {
				t.Fatal("Compute is not deterministic")
			}
		})
	}
}

func TestEnvFiltering(t *testing.T) {
	p := mustCompute(t, baseInputs(desktopHost()))
	env := envMap(p)
	for _, k := range []string{"SSH_AUTH_SOCK", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "LD_PRELOAD"} {
		if _, ok := env[k]; ok {
			t.Errorf("%s leaked into the plan", k)
		}
	}
	want := map[string]string{
		"TERM": "xterm-kitty", "LANG": "en_US.UTF-8", "LC_TIME": "de_DE.UTF-8", "EDITOR": "vim",
		"PATH": DefaultPath, "HOME": "/home/alice", "USER": "alice", "LOGNAME": "alice",
		"SHELL": "/bin/sh", "HOSTNAME": "karapace-" + testID.Short(), "KARAPACE_ENV": "1",
		"KARAPACE_HOSTNAME": "karapace-" + testID.Short(), "DISPLAY": ":0",
		"WAYLAND_DISPLAY": "wayland-1", "XDG_RUNTIME_DIR": "/run/user/1000",
		"DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus",
		"XAUTHORITY":               "/run/user/1000/Xauthority",
		// The prompt (TestHostFilesAndPrompt).
		"KARAPACE_ENV_NAME": testID.Short(), "debian_chroot": testID.Short(),
		"PS1": "(" + testID.Short() + `) \u@\h:\w\$ `,
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("%s = %q, want %q", k, env[k], v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("plan has %d variables, want %d: %v", len(env), len(want), p.Env)
	}
	if !slices.IsSorted(p.Env) {
		t.Errorf("Env is not sorted: %v", p.Env)
	}
}

func TestExtraEnv(t *testing.T) {
	in := baseInputs(aliceHost())
	in.ExtraEnv = map[string]string{"DEBIAN_FRONTEND": "noninteractive", "PATH": "/opt/bin"}
	env := envMap(mustCompute(t, in))
	if env["DEBIAN_FRONTEND"] != "noninteractive" || env["PATH"] != "/opt/bin" {
		t.Fatalf("extra env not applied: %v", env)
	}
	for _, bad := range []map[string]string{
		{"SSH_AUTH_SOCK": "/x"}, {"AWS_ACCESS_KEY_ID": "k"}, {"MY_TOKEN": "t"}, {"my_token": "t"}, {"Aws_Secret_Access_Key": "k"}, {"A-B": "x"}, {"X": "a\x00b"},
	} {
		in.ExtraEnv = bad
		if _, err := Compute(in); !errors.Is(err, runtime.ErrPolicy) {
			t.Errorf("ExtraEnv %v: err = %v, want ErrPolicy", bad, err)
		}
	}
}

func TestTermDefault(t *testing.T) {
	in := baseInputs(aliceHost())
	if _, ok := envMap(mustCompute(t, in))["TERM"]; ok {
		t.Error("TERM set without a tty and without a host TERM")
	}
	in.TTY = true
	if got := envMap(mustCompute(t, in))["TERM"]; got != "xterm-256color" {
		t.Errorf("TERM = %q with a tty", got)
	}
}

// TestDevTTYOnlyWithATerminal: /dev/tty names the caller's controlling terminal, so it
// is bound only into a session that gets a pty of its own; every other session runs in
// a new session without one.
func TestDevTTYOnlyWithATerminal(t *testing.T) {
	for _, tty := range []bool{false, true} {
		in := baseInputs(desktopHost())
		in.TTY = tty
		has := false
		for _, m := range mustCompute(t, in).Mounts {
			has = has || m.Destination == "/dev/tty"
		}
		if has != tty {
			t.Errorf("TTY %v: /dev/tty bound %v", tty, has)
		}
	}
}

func TestDevices(t *testing.T) {
	// /dev/tty only for a session with a pty of its own (see TestDevTTYOnlyWithATerminal).
	base := []string{"/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/pts", "/dev/shm", "/dev/mqueue"}
	tests := []struct {
		name       string
		gpu, audio bool
		host       Host
		want       []string
	}{
		{"none requested", false, false, desktopHost(), base},
		{"gpu", true, false, desktopHost(), append(slices.Clone(base), "/dev/dri", "/dev/nvidia0")},
		{"audio", false, true, desktopHost(), append(slices.Clone(base), "/dev/snd")},
		{"both", true, true, desktopHost(), append(slices.Clone(base), "/dev/dri", "/dev/nvidia0", "/dev/snd")},
		{"requested but absent", true, true, aliceHost(), base},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs(tc.host)
			in.Manifest.HardwareGPU, in.Manifest.HardwareAudio = tc.gpu, tc.audio
			var got []string
			for _, m := range mustCompute(t, in).Mounts {
				if under(m.Destination, "/dev") {
					got = append(got, m.Destination)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("/dev mounts = %v, want %v", got, tc.want)
			}
		})
	}
	// A build never gets devices, whatever the manifest asks.
	in := baseInputs(desktopHost())
	in.Build, in.Argv = true, []string{"true"}
	in.Manifest.HardwareGPU, in.Manifest.HardwareAudio = true, true
	for _, d := range destinations(mustCompute(t, in)) {
		if d == "/dev/dri" || d == "/dev/snd" {
			t.Errorf("build plan mounts %s", d)
		}
	}
}

func TestHostIntegration(t *testing.T) {
	type want struct {
		mounts []string
		env    map[string]string // "" value: must be absent
	}
	tests := []struct {
		name  string
		env   map[string]string
		audio bool
		want  want
	}{
		{"nothing", map[string]string{}, false, want{
			[]string{"/run/user/1000"},
			map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "DISPLAY": "", "WAYLAND_DISPLAY": "", "DBUS_SESSION_BUS_ADDRESS": ""}}},
		{"wayland", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "WAYLAND_DISPLAY": "wayland-1"}, false, want{
			[]string{"/run/user/1000", "/run/user/1000/wayland-1", "/run/user/1000/bus"},
			map[string]string{"WAYLAND_DISPLAY": "wayland-1", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1000/bus"}}},
		{"wayland absolute socket path", map[string]string{"WAYLAND_DISPLAY": "/run/user/1000/wayland-1"}, false, want{
			[]string{"/run/user/1000", "/run/user/1000/wayland-1"},
			map[string]string{"WAYLAND_DISPLAY": "wayland-1", "DBUS_SESSION_BUS_ADDRESS": ""}}},
		{"wayland socket absent", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000", "WAYLAND_DISPLAY": "wayland-9"}, false, want{
			[]string{"/run/user/1000", "/run/user/1000/bus"},
			map[string]string{"WAYLAND_DISPLAY": ""}}},
		{"x11", map[string]string{"DISPLAY": ":0"}, false, want{
			[]string{"/tmp/.X11-unix", "/run/user/1000"},
			map[string]string{"DISPLAY": ":0", "XAUTHORITY": ""}}},
		{"x11 with xauthority", map[string]string{"DISPLAY": ":0", "XAUTHORITY": "/run/user/1000/xauth_abc"}, false, want{
			[]string{"/tmp/.X11-unix", "/run/user/1000", "/run/user/1000/Xauthority"},
			map[string]string{"DISPLAY": ":0", "XAUTHORITY": "/run/user/1000/Xauthority"}}},
		{"audio not requested", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, false, want{
			[]string{"/run/user/1000", "/run/user/1000/bus"}, nil}},
		{"audio requested", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, true, want{
			[]string{"/run/user/1000", "/run/user/1000/pipewire-0", "/run/user/1000/pulse/native", "/run/user/1000/bus"}, nil}},
		{"relative runtime dir ignored", map[string]string{"XDG_RUNTIME_DIR": "run", "WAYLAND_DISPLAY": "wayland-1"}, true, want{
			[]string{"/run/user/1000"}, map[string]string{"WAYLAND_DISPLAY": "", "DBUS_SESSION_BUS_ADDRESS": ""}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := desktopHost()
			h.Env = tc.env
			in := baseInputs(h)
			in.Manifest.HardwareAudio = tc.audio
			p := mustCompute(t, in)
			var got []string
			for _, m := range p.Mounts {
				if under(m.Destination, "/run") || under(m.Destination, "/tmp/.X11-unix") {
					got = append(got, m.Destination)
				}
			}
			if !slices.Equal(got, tc.want.mounts) {
				t.Errorf("mounts = %v, want %v", got, tc.want.mounts)
			}
			env := envMap(p)
			for k, v := range tc.want.env {
				if got, ok := env[k]; v == "" && ok {
					t.Errorf("%s = %q, want unset", k, got)
				} else if v != "" && got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestMountOrderAndKinds(t *testing.T) {
	in := baseInputs(desktopHost())
	in.Manifest.Mounts = []schema.Mount{
		{Label: "a", HostPath: "~/notes.txt", ContainerPath: "/notes.txt"},
		{Label: "b", HostPath: "./src", ContainerPath: "/workspace"},
	}
	p := mustCompute(t, in)
	ds := destinations(p)
	idx := func(d string) int { return slices.Index(ds, d) }
	order := []string{"/proc", "/sys", "/dev", "/dev/null", "/dev/pts", "/tmp", "/tmp/.X11-unix", "/home/alice", "/etc/resolv.conf", "/etc/hosts", "/run/user/1000", "/run/user/1000/bus", "/notes.txt", "/workspace"}
	for i := 1; i < len(order); i++ {
		if idx(order[i-1]) < 0 || idx(order[i]) < 0 || idx(order[i-1]) > idx(order[i]) {
			t.Fatalf("%s must come before %s: %v", order[i-1], order[i], ds)
		}
	}
	for _, m := range p.Mounts {
		switch m.Destination {
		case "/notes.txt", "/dev/null", "/etc/resolv.conf", "/run/user/1000/bus":
			if !m.File {
				t.Errorf("%s: File = false", m.Destination)
			}
		case "/workspace", "/home/alice", "/tmp":
			if m.File {
				t.Errorf("%s: File = true", m.Destination)
			}
		}
		if m.Destination == "/tmp" && m.Type != "tmpfs" {
			t.Errorf("/tmp is %s, want a fresh tmpfs", m.Type)
		}
		if m.Destination == "/sys" && !slices.Contains(m.Options, "ro") {
			t.Errorf("/sys is not read-only: %v", m.Options)
		}
		if m.Type == "bind" && !filepath.IsAbs(m.Source) {
			t.Errorf("bind source %q is not absolute", m.Source)
		}
	}
}

func TestSysfsNeedsNetworkNamespace(t *testing.T) {
	in := baseInputs(aliceHost())
	if p := mustCompute(t, in); p.Mounts[1].Type != "bind" || p.NetworkIsolation {
		t.Errorf("without isolation /sys = %+v", p.Mounts[1])
	}
	in.Manifest.NetworkIsolation = true
	if p := mustCompute(t, in); p.Mounts[1].Type != "sysfs" || !p.NetworkIsolation {
		t.Errorf("with isolation /sys = %+v", p.Mounts[1])
	}
	// Builds install packages, so network_isolation does not apply; --offline does.
	in.Build, in.Argv = true, []string{"true"}
	if mustCompute(t, in).NetworkIsolation {
		t.Error("build isolated by network_isolation")
	}
	in.Offline = true
	if !mustCompute(t, in).NetworkIsolation {
		t.Error("offline build not isolated")
	}
}

func TestLoginShellAndDir(t *testing.T) {
	h := aliceHost()
	in := baseInputs(h)
	p := mustCompute(t, in)
	if !slices.Equal(p.Argv, []string{"/bin/sh", "-l"}) || p.Dir != "/home/alice" {
		t.Fatalf("no bash: argv %v dir %s", p.Argv, p.Dir)
	}
	h.FS.(*fakeFS).add("/store/env/x/upper/usr/bin/bash", File)
	p = mustCompute(t, in)
	if !slices.Equal(p.Argv, []string{"/bin/bash", "-l"}) || envMap(p)["SHELL"] != "/bin/bash" {
		t.Fatalf("bash in upper: argv %v", p.Argv)
	}
	in.Dir = "relative"
	if _, err := Compute(in); err == nil {
		t.Fatal("relative Dir accepted")
	}
	// A home that does not exist is not mounted, and the session starts in /.
	h = aliceHost()
	h.Home = "/home/ghost"
	p = mustCompute(t, baseInputs(h))
	if slices.Contains(destinations(p), "/home/ghost") || p.Dir != "/" {
		t.Fatalf("missing home: %v, dir %s", destinations(p), p.Dir)
	}
	// HOME=/ is never bound over the root.
	h.Home = "/"
	if slices.Contains(destinations(mustCompute(t, baseInputs(h))), "/") {
		t.Fatal("home / bound")
	}
}

func TestComputeErrors(t *testing.T) {
	h := aliceHost()
	tests := []struct {
		name string
		mod  func(*Inputs)
		err  error
	}{
		{"no fs", func(in *Inputs) { in.Host.FS = nil }, nil},
		{"zero id", func(in *Inputs) { in.EnvID = schema.EnvID{} }, nil},
		{"no lower", func(in *Inputs) { in.Lower = nil }, nil},
		{"relative upper", func(in *Inputs) { in.Upper = "upper" }, nil},
		{"comma in lower", func(in *Inputs) { in.Lower = []string{"/a,b"} }, nil},
		{"colon in work", func(in *Inputs) { in.Work = "/a:b" }, nil},
		{"denied mount", func(in *Inputs) {
			in.Manifest.Mounts = []schema.Mount{{Label: "x", HostPath: "/homeevil/x", ContainerPath: "/x"}}
		}, runtime.ErrMountDenied},
		{"missing mount source", func(in *Inputs) {
			in.Manifest.Mounts = []schema.Mount{{Label: "x", HostPath: "~/gone", ContainerPath: "/x"}}
		}, runtime.ErrMountMissing},
		{"bad limit", func(in *Inputs) { v := uint64(1); in.Manifest.CPUShares = &v }, runtime.ErrPolicy},
		{"build without argv", func(in *Inputs) { in.Build = true }, runtime.ErrExecFailed},
		{"nul in argv", func(in *Inputs) { in.Argv = []string{"a\x00"} }, runtime.ErrExecFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInputs(h)
			tc.mod(&in)
			_, err := Compute(in)
			if err == nil {
				t.Fatal("Compute succeeded")
			}
			if tc.err != nil && !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
		})
	}
	// A build ignores manifest mounts, so a mount that would be denied does not stop it.
	in := baseInputs(h)
	in.Build, in.Argv = true, []string{"true"}
	in.Manifest.Mounts = []schema.Mount{{Label: "x", HostPath: "/homeevil/x", ContainerPath: "/x"}}
	if _, err := Compute(in); err != nil {
		t.Fatalf("build with a denied mount: %v", err)
	}
}

func TestHostFromOS(t *testing.T) {
	t.Setenv("SSH_AUTH_SOCK", "/run/user/0/ssh-agent")
	t.Setenv("GITHUB_TOKEN", "ghp_secret")
	t.Setenv("LC_MESSAGES", "C")
	h := HostFromOS()
	if h.Env["SSH_AUTH_SOCK"] == "" {
		t.Fatal("HostFromOS did not read the environment")
	}
	if h.UID != uint32(os.Getuid()) || h.GID != uint32(os.Getgid()) {
		t.Fatalf("uid/gid %d/%d", h.UID, h.GID)
	}
	if h.User == "" || !filepath.IsAbs(h.Home) || h.Cwd == "" {
		t.Fatalf("host %+v", h)
	}
	if _, ok := h.FS.(OSFS); !ok {
		t.Fatalf("FS is %T", h.FS)
	}
	if h.FS.Kind("/dev/null") != Device || h.FS.Kind("/") != Dir || h.FS.Kind("/nonexistent-karapace") != Missing {
		t.Fatal("OSFS.Kind is wrong")
	}
	// The real host computes a plan.
	in := baseInputs(h)
	in.Argv = []string{"true"}
	p, err := Compute(in)
	if err != nil {
		t.Fatal(err)
	}
	env := envMap(p)
	for k := range env {
		if EnvDenied(k) {
			t.Errorf("denied %s in plan", k)
		}
	}
	if env["LC_MESSAGES"] != "C" {
		t.Errorf("allowed LC_MESSAGES missing: %v", p.Env)
	}
}

func TestInputsFor(t *testing.T) {
	spec := &runtime.Spec{EnvID: testID, EnvDir: "/s/env/" + testID.String(), ManifestDir: "/m", ReadOnly: true, Offline: true,
		Manifest: schema.Normalized{BaseImage: "debian/bookworm"}}
	in := InputsFor(spec)
	in.Lower = []string{"/s/images/x/rootfs"}
	in.Host = aliceHost()
	in.Argv = []string{"true"}
	p := mustCompute(t, in)
	if p.Root.Upper != spec.EnvDir+"/upper" || p.Root.Work != spec.EnvDir+"/work" || !p.Root.ReadOnly || !p.NetworkIsolation || in.ManifestDir != "/m" {
		t.Fatalf("plan %+v", p.Root)
	}
}

// TestSingleMappingCompat: with the single mapping, ownership changes are skipped and a
// session of an environment with apt gets the apt option that keeps its downloads as
// root; with a range, neither.
func TestSingleMappingCompat(t *testing.T) {
	for _, single := range []bool{true, false} {
		in := baseInputs(desktopHost())
		in.AptConf = "/store/env/x/apt-single-id.conf"
		if !single {
			in.UIDMap = []IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
			in.GIDMap = in.UIDMap
		}
		in.Host.FS.(*fakeFS).add(filepath.Join(in.Lower[0], "etc/apt/apt.conf.d"), Dir)
		p := mustCompute(t, in)
		skips, bound := false, false
		for _, r := range p.Security.Syscalls {
			skips = skips || (r.Skip && slices.Contains(r.Names, "fchownat"))
		}
		for _, m := range p.Mounts {
			bound = bound || (m.Destination == AptSingleIDTarget && m.Source == in.AptConf)
		}
		if skips != single || bound != single {
			t.Errorf("single mapping %v: chown skipped %v, apt option bound %v", single, skips, bound)
		}
	}
}

// TestSessionDir: a session starts in the caller's directory when the sandbox sees it:
// inside a mount at its container path (the most specific mount wins), inside the home
// at the same path, else in the home; a build starts in /; an explicit Dir wins.
func TestSessionDir(t *testing.T) {
	mounts := []schema.Mount{
		{Label: "w", HostPath: "/home/alice/proj", ContainerPath: "/workspace"},
		{Label: "s", HostPath: "/home/alice/proj/src", ContainerPath: "/src"},
		{Label: "t", HostPath: "/tmp/x", ContainerPath: "/scratch"},
	}
	for _, c := range []struct {
		cwd, want string
		build     bool
		dir       string
	}{
		{cwd: "/home/alice/proj", want: "/workspace"},
		{cwd: "/home/alice/proj/src", want: "/src"},
		{cwd: "/home/alice/ok", want: "/src"}, // a symlink to proj/src
		{cwd: "/tmp/x", want: "/scratch"},
		{cwd: "/home/alice", want: "/home/alice"},
		{cwd: "/etc", want: "/home/alice"},
		{cwd: "", want: "/home/alice"},
		{cwd: "/home/alice/proj", build: true, want: "/"},
		{cwd: "/home/alice/proj", dir: "/opt", want: "/opt"},
	} {
		in := baseInputs(aliceHost())
		in.Manifest.Mounts = mounts
		in.Host.Cwd, in.Build, in.Dir = c.cwd, c.build, c.dir
		if c.build {
			in.Argv = []string{"true"}
		}
		if got := mustCompute(t, in).Dir; got != c.want {
			t.Errorf("cwd %q (build %v, dir %q): session starts in %q, want %q", c.cwd, c.build, c.dir, got, c.want)
		}
	}
}

func TestHostsFor(t *testing.T) {
	host := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost"
	if got := string(HostsFor([]byte(host), "karapace-0123456789ab")); got != host+"\n127.0.1.1\tkarapace-0123456789ab\n" {
		t.Errorf("hosts: %q", got)
	}
	named := "127.0.0.1 localhost karapace-0123456789ab\n"
	if got := string(HostsFor([]byte(named), "karapace-0123456789ab")); got != named {
		t.Errorf("hosts that name it already: %q", got)
	}
	if got := string(HostsFor(nil, "h")); got != "127.0.1.1\th\n" {
		t.Errorf("no host hosts: %q", got)
	}
}

// TestHostFilesAndPrompt: with the backend's files, /etc/hosts and /etc/hostname are
// bound from them, and the prompt variables name the environment.
func TestHostFilesAndPrompt(t *testing.T) {
	in := baseInputs(desktopHost())
	in.HostsFile, in.HostnameFile, in.Name = "/store/env/x/hosts", "/store/env/x/hostname", "web"
	p := mustCompute(t, in)
	got := map[string]string{}
	for _, m := range p.Mounts {
		got[m.Destination] = m.Source
	}
	if got["/etc/hosts"] != in.HostsFile || got["/etc/hostname"] != in.HostnameFile {
		t.Errorf("mounts: hosts from %q, hostname from %q", got["/etc/hosts"], got["/etc/hostname"])
	}
	env := envMap(p)
	if env["debian_chroot"] != "web" || env["KARAPACE_ENV_NAME"] != "web" || !strings.HasPrefix(env["PS1"], "(web) ") {
		t.Errorf("prompt variables: %v", env)
	}
}

// TestSSHAgentOptIn: the agent socket is bound and SSH_AUTH_SOCK set only when asked
// for, and asking without a socket is an error that says what to do.
func TestSSHAgentOptIn(t *testing.T) {
	h := desktopHost()
	h.FS.(*fakeFS).add("/run/user/1000/ssh-agent.sock", Socket)
	h.Env["SSH_AUTH_SOCK"] = "/run/user/1000/ssh-agent.sock"
	for _, want := range []bool{false, true} {
		in := baseInputs(h)
		in.SSHAgent = want
		p := mustCompute(t, in)
		bound := false
		for _, m := range p.Mounts {
			bound = bound || m.Source == "/run/user/1000/ssh-agent.sock"
		}
		if got := envMap(p)["SSH_AUTH_SOCK"]; bound != want || (got != "") != want {
			t.Errorf("SSHAgent %v: bound %v, SSH_AUTH_SOCK %q", want, bound, got)
		}
	}
	h.Env["SSH_AUTH_SOCK"] = "/nowhere"
	in := baseInputs(h)
	in.SSHAgent = true
	if _, err := Compute(in); !errors.Is(err, runtime.ErrPolicy) || !strings.Contains(err.Error(), "ssh-agent") {
		t.Errorf("agent asked for without a socket: %v", err)
	}
}

// TestManifestEnv: [env] reaches sessions, not build steps; exec -e wins over it; a
// denied name in it is refused.
func TestManifestEnv(t *testing.T) {
	in := baseInputs(aliceHost())
	in.Manifest.Env = map[string]string{"GOFLAGS": "-mod=mod", "FOO": "manifest"}
	in.ExtraEnv = map[string]string{"FOO": "caller"}
	env := envMap(mustCompute(t, in))
	if env["GOFLAGS"] != "-mod=mod" || env["FOO"] != "caller" {
		t.Errorf("session: %v", env)
	}
	in.Build, in.Argv, in.ExtraEnv = true, []string{"true"}, nil
	if env := envMap(mustCompute(t, in)); env["GOFLAGS"] != "" {
		t.Errorf("a build step got [env]: %v", env)
	}
	in = baseInputs(aliceHost())
	in.Manifest.Env = map[string]string{"npm_token": "x"}
	if _, err := Compute(in); !errors.Is(err, runtime.ErrPolicy) || !strings.Contains(err.Error(), "[env]") {
		t.Errorf("denied [env] variable: %v", err)
	}
}
