package oci

import (
	"math/bits"
	goruntime "runtime"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/karapace/karapace/runtime/sandbox"
)

// seccompConfig is the plan's system call rules as config.json's seccomp section, which
// the runtime compiles with libseccomp: everything is allowed but what a rule names. The
// rules cover the host's other ABIs too (32-bit x86 and x32 on x86_64), by name.
func seccompConfig(rules []sandbox.SyscallRule) *specs.LinuxSeccomp {
	if len(rules) == 0 {
		return nil
	}
	s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: seccompArches()}
	for _, r := range rules {
		errno := uint(r.Errno)
		base := specs.LinuxSyscall{Names: append([]string(nil), r.Names...), Action: specs.ActErrno, ErrnoRet: &errno}
		switch {
		case r.Arg == nil:
			s.Syscalls = append(s.Syscalls, base)
		case r.Arg.Op == sandbox.ArgEqual:
			// (arg & mask) == value compares the low 32 bits, as the namespace
			// backend's filter does.
			base.Args = []specs.LinuxSeccompArg{{Index: uint(r.Arg.Index), Value: 0xffffffff, ValueTwo: uint64(r.Arg.Value), Op: specs.OpMaskedEqual}}
			s.Syscalls = append(s.Syscalls, base)
		case r.Arg.Op == sandbox.ArgAnyBit:
			// Arguments of one rule must all match: "any bit" is one rule per bit.
			for v := r.Arg.Value; v != 0; v &= v - 1 {
				bit := uint64(1) << bits.TrailingZeros32(v)
				rule := base
				rule.Args = []specs.LinuxSeccompArg{{Index: uint(r.Arg.Index), Value: bit, ValueTwo: bit, Op: specs.OpMaskedEqual}}
				s.Syscalls = append(s.Syscalls, rule)
			}
		}
	}
	return s
}

func seccompArches() []specs.Arch {
	switch goruntime.GOARCH {
	case "amd64":
		return []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32}
	case "arm64":
		return []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	}
	return nil
}
