// Package sandbox computes, as pure data, everything an environment runs with: the root
// overlay, the mount list, the environment variables, the hostname, the ID mapping and
// the resource limits. Both the namespace backend (which performs the plan itself) and
// the OCI backend (which writes it into config.json) consume the same Plan, so the two
// enforce one policy.
//
// sandbox performs no mounts and starts no processes.
package sandbox

// Plan is one session's complete sandbox description.
type Plan struct {
	Root     Root
	Hostname string
	// Mounts are performed in order, after the root overlay, with targets relative to
	// the new root. They include /proc, /sys, the minimal /dev, the user's home, host
	// integration sockets and the manifest's mounts.
	Mounts []Mount
	// Env is the complete environment of the process (KEY=VALUE), already filtered by
	// the security policy. Nothing else from the host passes.
	Env  []string
	Argv []string
	// Dir is the working directory inside the environment.
	Dir string
	// NetworkIsolation gives the environment a new network namespace with only lo up.
	NetworkIsolation bool
	// UIDMap and GIDMap map ids inside the user namespace to host ids. The first entry
	// always maps 0 to the caller; further entries come from /etc/subuid and /etc/subgid.
	UIDMap []IDMap
	GIDMap []IDMap
	Limits Limits
	// TTY asks for a controlling terminal (interactive sessions).
	TTY bool
	// Security limits what the command may do to the kernel (DefaultSecurity).
	Security Security
}

// Root is the environment's root filesystem: an overlay of Upper over Lower.
type Root struct {
	Lower []string // read-only layers, topmost first (the image rootfs is the last)
	Upper string   // <env>/upper
	Work  string   // <env>/work (same filesystem as Upper)
	// ReadOnly mounts the merged root read-only (a frozen environment).
	ReadOnly bool
}

// Mount is one mount, as data. Options use the OCI runtime-spec vocabulary ("bind",
// "rbind", "ro", "nosuid", "nodev", "noexec", "rprivate", "mode=755", ...), so the OCI
// backend copies them as they are and the namespace backend turns them into flags.
type Mount struct {
	Type        string   // "bind", "proc", "sysfs", "tmpfs", "devpts", "mqueue"
	Source      string   // host path for binds; the filesystem source otherwise
	Destination string   // absolute path inside the environment
	Options     []string //
	// File says the destination is a file (a device node, a socket, resolv.conf), so
	// the mount point is created as an empty file rather than a directory.
	File bool
	// Optional mounts are skipped when their source does not exist at mount time.
	Optional bool
}

// IDMap is one line of a uid_map or gid_map.
type IDMap struct {
	ContainerID uint32
	HostID      uint32
	Size        uint32
}

// Limits are the manifest's resource limits. Zero means "no limit".
type Limits struct {
	CPUShares   uint64 // relative weight, cgroup v1 cpu.shares scale (2..262144)
	MemoryBytes uint64
}
