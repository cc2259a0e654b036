package namespace

import (
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/runtime/sandbox"
)

// The seccomp program is built here, from the plan's rules, and installed by the C
// launcher as the last step before execve (after no_new_privs, so no privilege is
// needed). Classic BPF over struct seccomp_data: nr at 0, arch at 4, the instruction
// pointer at 8, args[i] at 16+8i (the low 32 bits first, on the little-endian
// architectures this table covers).
const (
	seccompRetAllow = 0x7fff0000
	seccompRetErrno = 0x00050000
	seccompRetKill  = 0x80000000 // SECCOMP_RET_KILL_PROCESS

	offNr   = 0
	offArch = 4
	offArgs = 16
)

// compileSeccomp turns the profile into a classic BPF program for this architecture.
// System calls the architecture does not have are left out; a system call of another
// ABI (32-bit x86 or x32 on x86_64) is refused with ENOSYS as a whole, since the table
// names only the native numbers.
func compileSeccomp(rules []sandbox.SyscallRule) ([]bpf.RawInstruction, error) {
	prog := []bpf.Instruction{
		bpf.LoadAbsolute{Off: offArch, Size: 4},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: seccompArch, SkipTrue: 1},
		bpf.RetConstant{Val: seccompRetErrno | 38},
		bpf.LoadAbsolute{Off: offNr, Size: 4},
	}
	if seccompX32Bit != 0 {
		prog = append(prog,
			bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: seccompX32Bit, SkipFalse: 1},
			bpf.RetConstant{Val: seccompRetErrno | 38},
		)
	}
	for _, r := range rules {
		if r.Skip != (r.Errno == 0) || r.Errno > 4095 {
			return nil, fmt.Errorf("seccomp rule %v: errno %d out of range", r.Names, r.Errno)
		}
		ret := bpf.RetConstant{Val: seccompRetErrno | r.Errno}
		for _, name := range r.Names {
			nr, ok := syscallNumbers[name]
			if !ok {
				nr, ok = archSyscalls[name]
			}
			if !ok {
				if _, known := absentSyscalls[name]; known {
					continue
				}
				return nil, fmt.Errorf("seccomp rule: unknown system call %q", name)
			}
			if r.Arg == nil {
				// nr is in A: match it, or skip the return.
				prog = append(prog, bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 1}, ret)
				continue
			}
			if r.Arg.Index < 0 || r.Arg.Index > 5 {
				return nil, fmt.Errorf("seccomp rule %s: argument %d out of range", name, r.Arg.Index)
			}
			cond := bpf.JumpEqual
			if r.Arg.Op == sandbox.ArgAnyBit {
				cond = bpf.JumpBitsSet
			}
			// Not this call: skip the argument test, its return and the reload of nr.
			prog = append(prog,
				bpf.JumpIf{Cond: bpf.JumpEqual, Val: nr, SkipFalse: 4},
				bpf.LoadAbsolute{Off: uint32(offArgs + 8*r.Arg.Index), Size: 4},
				bpf.JumpIf{Cond: cond, Val: r.Arg.Value, SkipFalse: 1},
				ret,
				bpf.LoadAbsolute{Off: offNr, Size: 4},
			)
		}
	}
	prog = append(prog, bpf.RetConstant{Val: seccompRetAllow})
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("seccomp program: %w", err)
	}
	if len(raw) > 4096 {
		return nil, fmt.Errorf("seccomp program of %d instructions is over the kernel's 4096", len(raw))
	}
	return raw, nil
}

// encodeSeccomp is the program as the launcher reads it: 8 bytes per instruction
// (code, jt, jf, k; struct sock_filter), in hex so it travels as a plan string.
func encodeSeccomp(raw []bpf.RawInstruction) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 16*len(raw))
	for _, in := range raw {
		b := []byte{byte(in.Op), byte(in.Op >> 8), in.Jt, in.Jf, byte(in.K), byte(in.K >> 8), byte(in.K >> 16), byte(in.K >> 24)}
		for _, c := range b {
			out = append(out, digits[c>>4], digits[c&15])
		}
	}
	return string(out)
}

// capabilityMask is the set of capabilities as the launcher keeps it: bit n for
// capability n.
func capabilityMask(names []string) (uint64, error) {
	var m uint64
	for _, n := range names {
		c, ok := capabilityNumbers[n]
		if !ok {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		m |= 1 << c
	}
	return m, nil
}

// syscallNumbers are the numbers, on this architecture, of the system calls a profile may
// name that every architecture has; archSyscalls (per architecture) adds the others.
var syscallNumbers = map[string]uint32{
	"ioctl": unix.SYS_IOCTL, "clone": unix.SYS_CLONE, "clone3": unix.SYS_CLONE3, "unshare": unix.SYS_UNSHARE,
	"setns": unix.SYS_SETNS, "mount": unix.SYS_MOUNT, "umount2": unix.SYS_UMOUNT2, "pivot_root": unix.SYS_PIVOT_ROOT,
	"move_mount": unix.SYS_MOVE_MOUNT, "open_tree": unix.SYS_OPEN_TREE, "fsopen": unix.SYS_FSOPEN,
	"fsconfig": unix.SYS_FSCONFIG, "fsmount": unix.SYS_FSMOUNT, "fspick": unix.SYS_FSPICK,
	"mount_setattr": unix.SYS_MOUNT_SETATTR, "add_key": unix.SYS_ADD_KEY, "keyctl": unix.SYS_KEYCTL,
	"fchown": unix.SYS_FCHOWN, "fchownat": unix.SYS_FCHOWNAT, "setgroups": unix.SYS_SETGROUPS,
	"request_key": unix.SYS_REQUEST_KEY, "init_module": unix.SYS_INIT_MODULE, "finit_module": unix.SYS_FINIT_MODULE,
	"delete_module": unix.SYS_DELETE_MODULE, "kexec_load": unix.SYS_KEXEC_LOAD, "kexec_file_load": unix.SYS_KEXEC_FILE_LOAD,
	"reboot": unix.SYS_REBOOT, "swapon": unix.SYS_SWAPON, "swapoff": unix.SYS_SWAPOFF, "acct": unix.SYS_ACCT,
	"syslog": unix.SYS_SYSLOG, "quotactl": unix.SYS_QUOTACTL, "settimeofday": unix.SYS_SETTIMEOFDAY,
	"clock_settime": unix.SYS_CLOCK_SETTIME, "clock_adjtime": unix.SYS_CLOCK_ADJTIME, "adjtimex": unix.SYS_ADJTIMEX,
	"bpf": unix.SYS_BPF, "perf_event_open": unix.SYS_PERF_EVENT_OPEN, "lookup_dcookie": unix.SYS_LOOKUP_DCOOKIE,
	"open_by_handle_at": unix.SYS_OPEN_BY_HANDLE_AT, "userfaultfd": unix.SYS_USERFAULTFD, "nfsservctl": unix.SYS_NFSSERVCTL,
}

var capabilityNumbers = map[string]uint{
	"CAP_CHOWN": unix.CAP_CHOWN, "CAP_DAC_OVERRIDE": unix.CAP_DAC_OVERRIDE,
	"CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH, "CAP_FOWNER": unix.CAP_FOWNER,
	"CAP_FSETID": unix.CAP_FSETID, "CAP_KILL": unix.CAP_KILL, "CAP_SETGID": unix.CAP_SETGID,
	"CAP_SETUID": unix.CAP_SETUID, "CAP_SETPCAP": unix.CAP_SETPCAP,
	"CAP_LINUX_IMMUTABLE": unix.CAP_LINUX_IMMUTABLE, "CAP_NET_BIND_SERVICE": unix.CAP_NET_BIND_SERVICE,
	"CAP_NET_BROADCAST": unix.CAP_NET_BROADCAST, "CAP_NET_ADMIN": unix.CAP_NET_ADMIN,
	"CAP_NET_RAW": unix.CAP_NET_RAW, "CAP_IPC_LOCK": unix.CAP_IPC_LOCK, "CAP_IPC_OWNER": unix.CAP_IPC_OWNER,
	"CAP_SYS_MODULE": unix.CAP_SYS_MODULE, "CAP_SYS_RAWIO": unix.CAP_SYS_RAWIO,
	"CAP_SYS_CHROOT": unix.CAP_SYS_CHROOT, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE,
	"CAP_SYS_PACCT": unix.CAP_SYS_PACCT, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN,
	"CAP_SYS_BOOT": unix.CAP_SYS_BOOT, "CAP_SYS_NICE": unix.CAP_SYS_NICE,
	"CAP_SYS_RESOURCE": unix.CAP_SYS_RESOURCE, "CAP_SYS_TIME": unix.CAP_SYS_TIME,
	"CAP_SYS_TTY_CONFIG": unix.CAP_SYS_TTY_CONFIG, "CAP_MKNOD": unix.CAP_MKNOD,
	"CAP_LEASE": unix.CAP_LEASE, "CAP_AUDIT_WRITE": unix.CAP_AUDIT_WRITE,
	"CAP_AUDIT_CONTROL": unix.CAP_AUDIT_CONTROL, "CAP_SETFCAP": unix.CAP_SETFCAP,
	"CAP_MAC_OVERRIDE": unix.CAP_MAC_OVERRIDE, "CAP_MAC_ADMIN": unix.CAP_MAC_ADMIN,
	"CAP_SYSLOG": unix.CAP_SYSLOG, "CAP_WAKE_ALARM": unix.CAP_WAKE_ALARM,
	"CAP_BLOCK_SUSPEND": unix.CAP_BLOCK_SUSPEND, "CAP_AUDIT_READ": unix.CAP_AUDIT_READ,
	"CAP_PERFMON": unix.CAP_PERFMON, "CAP_BPF": unix.CAP_BPF, "CAP_CHECKPOINT_RESTORE": unix.CAP_CHECKPOINT_RESTORE,
}
