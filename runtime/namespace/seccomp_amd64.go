package namespace

import "golang.org/x/sys/unix"

const (
	seccompArch   = unix.AUDIT_ARCH_X86_64
	seccompX32Bit = 0x40000000 // __X32_SYSCALL_BIT
)

// archSyscalls are the x86_64-only system calls a profile may name.
var archSyscalls = map[string]uint32{
	"iopl": unix.SYS_IOPL, "ioperm": unix.SYS_IOPERM, "uselib": unix.SYS_USELIB,
	"chown": unix.SYS_CHOWN, "lchown": unix.SYS_LCHOWN,
}

// absentSyscalls are names a profile may use that x86_64 does not have.
var absentSyscalls = map[string]struct{}{}
