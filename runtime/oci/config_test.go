package oci

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/karapace/karapace/runtime/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func testPlan() *sandbox.Plan {
	return &sandbox.Plan{
		Root:     sandbox.Root{Lower: []string{"/img/rootfs"}, Upper: "/env/upper", Work: "/env/work"},
		Hostname: "karapace-0123456789ab",
		Security: sandbox.DefaultSecurity(),
		Mounts: []sandbox.Mount{
			{Type: "proc", Source: "proc", Destination: "/proc", Options: []string{"nosuid", "nodev", "noexec"}},
			{Type: "tmpfs", Source: "tmpfs", Destination: "/dev", Options: []string{"nosuid", "mode=755"}},
			{Type: "bind", Source: "/dev/null", Destination: "/dev/null", Options: []string{"bind", "nosuid", "noexec"}, File: true},
			{Type: "bind", Source: "/dev/dri", Destination: "/dev/dri", Options: []string{"rbind", "nosuid", "noexec"}, Optional: true},
			{Type: "bind", Source: "/gone", Destination: "/gone", Options: []string{"bind"}, Optional: true},
			{Type: "bind", Source: "/home/u", Destination: "/home/u", Options: []string{"rbind", "nosuid", "nodev"}},
		},
		Env:    []string{"HOME=/home/u", "PATH=/usr/bin:/bin"},
		Argv:   []string{"sh", "-c", `echo "quoted" \ back`},
		Dir:    "/home/u",
		UIDMap: []sandbox.IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}},
		GIDMap: []sandbox.IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}},
		Limits: sandbox.Limits{CPUShares: 512, MemoryBytes: 1 << 30},
	}
}

func TestConfig(t *testing.T) {
	dri := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(int64(226)), Minor: ptr(int64(0)), Access: "rwm"}
	opts := ConfigOptions{
		RootPath: "/env/work/oci-1/merged",
		Limits:   true,
		Exists:   func(p string) bool { return p != "/gone" },
		Devices: func(p string) []specs.LinuxDeviceCgroup {
			if p == "/dev/dri" {
				return []specs.LinuxDeviceCgroup{dri}
			}
			return nil
		},
	}
	plan := testPlan()
	opts.UIDMap, opts.GIDMap = plan.UIDMap, plan.GIDMap
	cfg, err := Config(plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Version != SpecVersion || cfg.Hostname != plan.Hostname || cfg.Root.Path != opts.RootPath || cfg.Root.Readonly {
		t.Errorf("header: %+v %+v", cfg, cfg.Root)
	}
	p := cfg.Process
	if !slices.Equal(p.Args, plan.Argv) || !slices.Equal(p.Env, plan.Env) || p.Cwd != "/home/u" || p.Terminal || !p.NoNewPrivileges || p.User.UID != 0 {
		t.Errorf("process: %+v", p)
	}
	if slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN") || !slices.Contains(p.Capabilities.Bounding, "CAP_CHOWN") {
		t.Errorf("capabilities: %v", p.Capabilities.Bounding)
	}
	var ns []specs.LinuxNamespaceType
	for _, n := range cfg.Linux.Namespaces {
		ns = append(ns, n.Type)
	}
	if want := []specs.LinuxNamespaceType{"user", "mount", "pid", "uts", "ipc"}; !slices.Equal(ns, want) {
		t.Errorf("namespaces %v, want %v", ns, want)
	}
	if len(cfg.Linux.UIDMappings) != 2 || cfg.Linux.UIDMappings[1] != (specs.LinuxIDMapping{ContainerID: 1, HostID: 100000, Size: 65536}) {
		t.Errorf("uid mappings %+v", cfg.Linux.UIDMappings)
	}
	var dests []string
	for _, m := range cfg.Mounts {
		dests = append(dests, m.Destination)
	}
	// /dev/null is the runtime's to create; /gone is optional and missing.
	if want := []string{"/proc", "/dev", "/dev/dri", "/home/u"}; !slices.Equal(dests, want) {
		t.Errorf("mounts %v, want %v", dests, want)
	}
	r := cfg.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != 1<<30 || r.CPU == nil || *r.CPU.Shares != 512 {
		t.Errorf("resources %+v", r)
	}
	if r.Devices[0].Allow || r.Devices[0].Access != "rwm" || !slices.ContainsFunc(r.Devices, func(d specs.LinuxDeviceCgroup) bool { return d.Major != nil && *d.Major == 226 && d.Allow }) {
		t.Errorf("device rules %+v", r.Devices)
	}
	// The encoding escapes what needs escaping: it round-trips.
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var back specs.Spec
	if err := json.Unmarshal(data, &back); err != nil || !slices.Equal(back.Process.Args, plan.Argv) {
		t.Errorf("round trip: %v %q", err, back.Process.Args)
	}

	// Network isolation adds a network namespace; rootless drops limits; a frozen root
	// is read-only.
	plan.NetworkIsolation, plan.Root.ReadOnly, plan.TTY = true, true, true
	opts.Limits = false
	opts.ConsoleSize = &specs.Box{Height: 31, Width: 97}
	cfg, err = Config(plan, opts)
	if err != nil {
		t.Fatal(err)
	}
	if last := cfg.Linux.Namespaces[len(cfg.Linux.Namespaces)-1].Type; last != specs.NetworkNamespace {
		t.Errorf("isolated plan: last namespace %s", last)
	}
	if cs := cfg.Process.ConsoleSize; cs == nil || cs.Height != 31 || cs.Width != 97 {
		t.Errorf("console size %+v", cs)
	}
	if cfg.Linux.Resources.Memory != nil || cfg.Linux.Resources.CPU != nil || !cfg.Root.Readonly || !cfg.Process.Terminal {
		t.Errorf("rootless frozen tty plan: %+v %+v", cfg.Linux.Resources, cfg.Root)
	}
}

func TestConfigRefuses(t *testing.T) {
	ok := ConfigOptions{RootPath: "/m", UIDMap: []sandbox.IDMap{{Size: 1}}, GIDMap: []sandbox.IDMap{{Size: 1}}}
	for name, c := range map[string]struct {
		plan func(*sandbox.Plan)
		opts func(*ConfigOptions)
	}{
		"no argv":        {plan: func(p *sandbox.Plan) { p.Argv = nil }},
		"relative root":  {opts: func(o *ConfigOptions) { o.RootPath = "merged" }},
		"no id maps":     {opts: func(o *ConfigOptions) { o.UIDMap = nil }},
		"mount on /":     {plan: func(p *sandbox.Plan) { p.Mounts = append(p.Mounts, sandbox.Mount{Type: "tmpfs", Destination: "/"}) }},
		"relative mount": {plan: func(p *sandbox.Plan) { p.Mounts = append(p.Mounts, sandbox.Mount{Type: "tmpfs", Destination: "tmp"}) }},
		"bind w/o bind": {plan: func(p *sandbox.Plan) {
			p.Mounts = append(p.Mounts, sandbox.Mount{Type: "bind", Source: "/a", Destination: "/a"})
		}},
	} {
		p, o := testPlan(), ok
		if c.plan != nil {
			c.plan(p)
		}
		if c.opts != nil {
			c.opts(&o)
		}
		if _, err := Config(p, o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Config(nil, ok); err == nil {
		t.Error("nil plan accepted")
	}
}

func TestOverlayData(t *testing.T) {
	r := sandbox.Root{Lower: []string{"/a", "/b"}, Upper: "/u", Work: "/w"}
	for _, c := range []struct {
		ro, userxattr bool
		want          string
	}{
		{false, false, "lowerdir=/a:/b,upperdir=/u,workdir=/s"},
		{false, true, "lowerdir=/a:/b,upperdir=/u,workdir=/s,userxattr"},
		{true, false, "lowerdir=/u:/a:/b"},
	} {
		r.ReadOnly = c.ro
		got, err := overlayData(r, "/s", c.userxattr)
		if err != nil || got != c.want {
			t.Errorf("%+v: %q %v, want %q", c, got, err, c.want)
		}
	}
	if _, err := overlayData(sandbox.Root{Lower: []string{"/a,b"}, Upper: "/u"}, "/s", false); err == nil {
		t.Error("a ',' in a layer path was accepted")
	}
	if _, err := overlayData(sandbox.Root{Upper: "/u"}, "/s", false); err == nil {
		t.Error("no lower layer was accepted")
	}
}

func TestIdentity(t *testing.T) {
	got := identity([]sandbox.IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}})
	want := []sandbox.IDMap{{ContainerID: 0, HostID: 0, Size: 1}, {ContainerID: 1, HostID: 1, Size: 65536}}
	if !slices.Equal(got, want) {
		t.Errorf("identity %+v", got)
	}
}
