package sandbox

// Security is what the command may do to the kernel once its sandbox exists: the
// capabilities it keeps, the /proc and /sys paths it may not see or write, and the
// system calls it is refused. Every plan carries the same default (both backends apply
// it; docs/security-model.md lists it), so that root inside an environment, which owns
// the sandbox's namespaces, still cannot act on the host kernel through them.
type Security struct {
	// Capabilities are the only ones the command keeps (bounding, permitted, effective
	// and inheritable sets; the ambient set is cleared), by their CAP_ names.
	Capabilities []string
	// MaskedPaths are hidden: an empty read-only tmpfs over a directory, /dev/null
	// over a file. Paths missing in the sandbox are skipped.
	MaskedPaths []string
	// ReadonlyPaths are bound onto themselves read-only (with nosuid, nodev, noexec).
	ReadonlyPaths []string
	// Syscalls are refused with their rule's errno; everything else is allowed.
	Syscalls []SyscallRule
}

// SyscallRule refuses the named system calls, all of them or only when Arg matches.
type SyscallRule struct {
	Names []string
	// Errno is returned instead of running the call (EPERM, or ENOSYS where a caller
	// is expected to fall back, as glibc does from clone3 to clone).
	Errno uint32
	// Skip makes the call return success without running it (Errno must be 0).
	Skip bool
	// Arg, when set, limits the rule to calls whose argument matches.
	Arg *ArgMatch
}

// ArgMatch compares the low 32 bits of one system call argument: the kernel reads
// ioctl requests and clone and unshare flags as 32-bit values, so high bits a caller
// sets cannot slip past the comparison.
type ArgMatch struct {
	Index int    // 0..5
	Op    ArgOp  // how Value is compared
	Value uint32 //
}

// ArgOp is how an ArgMatch compares.
type ArgOp int

const (
	// ArgEqual matches an argument equal to Value.
	ArgEqual ArgOp = iota
	// ArgAnyBit matches an argument with any bit of Value set.
	ArgAnyBit
)

// Errno values the profile uses (Linux numbers, the same on every architecture).
const (
	errEPERM  = 1
	errENOSYS = 38
)

// Request numbers and flags the profile names (Linux, every architecture).
const (
	ioctlTIOCSTI   = 0x5412
	ioctlTIOCLINUX = 0x541c
	// CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET, and CLONE_NEWTIME
	// (0x80, which unshare takes).
	cloneNamespaces = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x80
)

// DefaultCapabilities are what package managers and everyday tools need as root of the
// sandbox (file ownership and modes, switching users, binding low ports, chroot); none
// that administers the machine or the sandbox itself (SYS_ADMIN, NET_ADMIN, SYS_MODULE,
// SYS_RAWIO, SYS_TIME, SYS_PTRACE, MKNOD, ...).
var DefaultCapabilities = []string{
	"CAP_AUDIT_WRITE", "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID",
	"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
	"CAP_SETUID", "CAP_SYS_CHROOT",
}

// skipOwnership is added to the profile when only the caller's own id is mapped (no
// subordinate range): the kernel refuses every chown to another id and setgroups, so
// package managers that give files to system users (dpkg unpacking man-db's files as
// man:man, openssh-client's postinst chgrp) would fail. These calls then succeed without
// effect: with a single mapping every file belongs to root inside anyway, as when
// rootless podman ignores chown errors.
var skipOwnership = SyscallRule{Names: []string{"chown", "fchown", "lchown", "fchownat", "setgroups"}, Skip: true}

// SecurityFor is DefaultSecurity for a plan with the given uid map: with a single
// mapping, ownership changes are skipped (skipOwnership).
func SecurityFor(uidMap []IDMap) Security {
	s := DefaultSecurity()
	if singleMapping(uidMap) {
		s.Syscalls = append(s.Syscalls, skipOwnership)
	}
	return s
}

// DefaultSecurity is the profile every plan gets: the OCI runtimes' masked and read-only
// paths, DefaultCapabilities, and a system call deny list in the spirit of podman's and
// flatpak's: no pushing input into a terminal, no new namespaces (nested user
// namespaces are where most kernel attack surface opens up to an unprivileged process,
// and a namespace of its own would let the command mount a fresh, unmasked /proc), no
// mounts, no kernel keyring, modules, clock, swap, reboot or kexec, no BPF or perf.
func DefaultSecurity() Security {
	return Security{
		Capabilities: append([]string(nil), DefaultCapabilities...),
		MaskedPaths: []string{
			"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
			"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		},
		ReadonlyPaths: []string{
			"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
		},
		Syscalls: []SyscallRule{
			{Names: []string{"ioctl"}, Errno: errEPERM, Arg: &ArgMatch{Index: 1, Op: ArgEqual, Value: ioctlTIOCSTI}},
			{Names: []string{"ioctl"}, Errno: errEPERM, Arg: &ArgMatch{Index: 1, Op: ArgEqual, Value: ioctlTIOCLINUX}},
			{Names: []string{"clone", "unshare"}, Errno: errEPERM, Arg: &ArgMatch{Index: 0, Op: ArgAnyBit, Value: cloneNamespaces}},
			// clone3 passes its flags in memory, out of a filter's reach: refuse it as
			// unknown, and the C library falls back to clone.
			{Names: []string{"clone3"}, Errno: errENOSYS},
			{Names: []string{
				"setns", "mount", "umount2", "pivot_root", "move_mount", "open_tree", "fsopen",
				"fsconfig", "fsmount", "fspick", "mount_setattr",
				"add_key", "keyctl", "request_key",
				"init_module", "finit_module", "delete_module", "kexec_load", "kexec_file_load", "reboot",
				"swapon", "swapoff", "acct", "syslog", "quotactl",
				"settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
				"bpf", "perf_event_open", "lookup_dcookie", "open_by_handle_at", "userfaultfd",
				"iopl", "ioperm", "uselib", "nfsservctl",
			}, Errno: errEPERM},
		},
	}
}
