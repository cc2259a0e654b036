package oci

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ConfigOptions are the session facts config.json needs beyond the plan.
type ConfigOptions struct {
	// RootPath is the merged overlay directory the runtime pivots into.
	RootPath string
	// UIDMap and GIDMap are the container's mappings as the runtime sees them: the plan's
	// maps when the runtime runs as host root, the identity over the shim's user
	// namespace when the caller is unprivileged (the shim's namespace carries the
	// plan's maps then).
	UIDMap, GIDMap []sandbox.IDMap
	// Limits writes linux.resources (cpu shares, memory limit). False when the runtime
	// runs rootless and could not apply them.
	Limits bool
	// Exists reports whether a host path exists; Optional mounts whose source is missing
	// are left out. Nil keeps every mount.
	Exists func(path string) bool
	// Devices lists the device nodes behind a bind mount source (a node, or a directory
	// of nodes) for the device cgroup allow list. Nil allows only the standard ones.
	Devices func(path string) []specs.LinuxDeviceCgroup
	// ConsoleSize is the terminal's size for a TTY session (crun does not copy it from
	// its own terminal; runc does, and keeps it in step on SIGWINCH).
	ConsoleSize *specs.Box
}

// SpecVersion is the runtime-spec version config.json declares: 1.0.2, the newest that
// every supported runtime accepts (crun 1.8 refuses "1.2.x"); Config uses no later field.
const SpecVersion = "1.0.2"

// standardDevices are the character devices the minimal /dev binds (null, zero, full,
// random, urandom, tty), the pseudo-terminals (ptmx and pts, majors 5 and 136).
var standardDevices = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(5)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(7)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(8)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(9)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(0)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(5)), Minor: ptr(int64(2)), Access: "rwm"},
	{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"},
}

// defaultDevices are the device nodes the runtime-spec requires every runtime to
// provide in /dev, so config.json leaves the plan's binds of them out.
var defaultDevices = map[string]bool{
	"/dev/null": true, "/dev/zero": true, "/dev/full": true, "/dev/random": true,
	"/dev/urandom": true, "/dev/tty": true,
}

func ptr[T any](v T) *T { return &v }

// Config turns a plan into an OCI runtime-spec configuration. It is a pure function of
// its arguments (the host is reached only through opts.Exists and opts.Devices).
func Config(plan *sandbox.Plan, opts ConfigOptions) (*specs.Spec, error) {
	if plan == nil {
		return nil, errors.New("oci config: nil plan")
	}
	if len(plan.Argv) == 0 {
		return nil, fmt.Errorf("%w: empty argv", runtime.ErrExecFailed)
	}
	if !filepath.IsAbs(opts.RootPath) {
		return nil, fmt.Errorf("oci config: root path %q is not absolute", opts.RootPath)
	}
	if len(opts.UIDMap) == 0 || len(opts.GIDMap) == 0 {
		return nil, errors.New("oci config: empty id maps")
	}
	caps := append([]string(nil), plan.Security.Capabilities...)
	s := &specs.Spec{
		Version: SpecVersion,
		Process: &specs.Process{
			Terminal: plan.TTY,
			ConsoleSize: func() *specs.Box {
				if plan.TTY && opts.ConsoleSize != nil {
					return &specs.Box{Height: opts.ConsoleSize.Height, Width: opts.ConsoleSize.Width}
				}
				return nil
			}(),
			User: specs.User{UID: 0, GID: 0},
			Args: append([]string(nil), plan.Argv...),
			Env:  append([]string(nil), plan.Env...),
			Cwd:  plan.Dir,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: opts.RootPath, Readonly: plan.Root.ReadOnly},
		Hostname: plan.Hostname,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.UserNamespace}, {Type: specs.MountNamespace}, {Type: specs.PIDNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.IPCNamespace},
			},
			UIDMappings: idMappings(opts.UIDMap),
			GIDMappings: idMappings(opts.GIDMap),
			// The same limits as the namespace backend (sandbox.DefaultSecurity).
			MaskedPaths:   append([]string(nil), plan.Security.MaskedPaths...),
			ReadonlyPaths: append([]string(nil), plan.Security.ReadonlyPaths...),
			Seccomp:       seccompConfig(plan.Security.Syscalls),
		},
	}
	if plan.NetworkIsolation {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	devices := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	devices = append(devices, standardDevices...)
	for _, m := range plan.Mounts {
		if m.Optional && opts.Exists != nil && !opts.Exists(m.Source) {
			continue
		}
		if defaultDevices[m.Destination] {
			// Every OCI runtime provides these itself (by bind mount in a user
			// namespace) and refuses to find them already there.
			continue
		}
		if m.Destination == "/" || !filepath.IsAbs(m.Destination) {
			return nil, fmt.Errorf("%w: mount destination %q", runtime.ErrMountDenied, m.Destination)
		}
		typ := m.Type
		if typ == "bind" && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind") {
			return nil, fmt.Errorf("oci config: bind mount of %s has neither bind nor rbind", m.Source)
		}
		s.Mounts = append(s.Mounts, specs.Mount{
			Destination: m.Destination,
			Type:        typ,
			Source:      m.Source,
			Options:     append([]string(nil), m.Options...),
		})
		if typ == "bind" && strings.HasPrefix(m.Source, "/dev/") && opts.Devices != nil {
			devices = append(devices, opts.Devices(m.Source)...)
		}
	}
	res := &specs.LinuxResources{Devices: devices}
	if opts.Limits {
		if plan.Limits.MemoryBytes > 0 {
			res.Memory = &specs.LinuxMemory{Limit: ptr(int64(min(plan.Limits.MemoryBytes, 1<<62)))}
		}
		if plan.Limits.CPUShares > 0 {
			res.CPU = &specs.LinuxCPU{Shares: ptr(plan.Limits.CPUShares)}
		}
	}
	s.Linux.Resources = res
	return s, nil
}

func idMappings(m []sandbox.IDMap) []specs.LinuxIDMapping {
	out := make([]specs.LinuxIDMapping, len(m))
	for i, e := range m {
		out[i] = specs.LinuxIDMapping{ContainerID: e.ContainerID, HostID: e.HostID, Size: e.Size}
	}
	return out
}

// identity maps every id the shim's user namespace holds to itself.
func identity(m []sandbox.IDMap) []sandbox.IDMap {
	out := make([]sandbox.IDMap, len(m))
	for i, e := range m {
		out[i] = sandbox.IDMap{ContainerID: e.ContainerID, HostID: e.ContainerID, Size: e.Size}
	}
	return out
}
