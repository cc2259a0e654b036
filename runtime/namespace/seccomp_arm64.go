package namespace

import "golang.org/x/sys/unix"

const (
	seccompArch   = unix.AUDIT_ARCH_AARCH64
	seccompX32Bit = 0
)

// archSyscalls are the arm64-only system calls a profile may name.
var archSyscalls = map[string]uint32{}

// absentSyscalls are names a profile may use that arm64 does not have.
var absentSyscalls = map[string]struct{}{"iopl": {}, "ioperm": {}, "uselib": {}, "chown": {}, "lchown": {}}
