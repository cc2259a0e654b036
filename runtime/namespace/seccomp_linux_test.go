package namespace

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/runtime/sandbox"
)

// seccompData is struct seccomp_data as the filter sees it in x/net/bpf's interpreter:
// the kernel loads 32-bit words in host order, the interpreter in network order, so each
// word is stored big-endian where the little-endian kernel keeps it (the low half of an
// argument first).
func seccompData(arch, nr uint32, args ...uint64) []byte {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b[0:], nr)
	binary.BigEndian.PutUint32(b[4:], arch)
	for i, a := range args {
		binary.BigEndian.PutUint32(b[16+8*i:], uint32(a))
		binary.BigEndian.PutUint32(b[20+8*i:], uint32(a>>32))
	}
	return b
}

// seccompVM compiles rules and loads the program into x/net/bpf's interpreter.
func seccompVM(t *testing.T, rules []sandbox.SyscallRule) (*bpf.VM, []bpf.RawInstruction) {
	t.Helper()
	raw, err := compileSeccomp(rules)
	if err != nil {
		t.Fatal(err)
	}
	insns := make([]bpf.Instruction, len(raw))
	for i, r := range raw {
		insns[i] = r.Disassemble()
	}
	vm, err := bpf.NewVM(insns)
	if err != nil {
		t.Fatal(err)
	}
	return vm, raw
}

// TestSeccompProgram runs the default profile's program in a BPF interpreter on the
// calls it must refuse and on everyday ones it must allow.
func TestSeccompProgram(t *testing.T) {
	vm, raw := seccompVM(t, sandbox.DefaultSecurity().Syscalls)
	const (
		allow = seccompRetAllow
		eperm = seccompRetErrno | 1
		enos  = seccompRetErrno | 38
	)
	arch := uint32(seccompArch)
	for _, c := range []struct {
		name string
		data []byte
		want uint32
	}{
		{"TIOCSTI", seccompData(arch, unix.SYS_IOCTL, 0, unix.TIOCSTI), eperm},
		{"TIOCSTI with high bits", seccompData(arch, unix.SYS_IOCTL, 0, 1<<32|unix.TIOCSTI), eperm},
		{"TIOCLINUX", seccompData(arch, unix.SYS_IOCTL, 0, unix.TIOCLINUX), eperm},
		{"TIOCGWINSZ", seccompData(arch, unix.SYS_IOCTL, 0, unix.TIOCGWINSZ), allow},
		{"clone of a thread", seccompData(arch, unix.SYS_CLONE, unix.CLONE_VM|unix.CLONE_THREAD), allow},
		{"clone into a user namespace", seccompData(arch, unix.SYS_CLONE, unix.CLONE_NEWUSER), eperm},
		{"unshare of a mount namespace", seccompData(arch, unix.SYS_UNSHARE, unix.CLONE_NEWNS), eperm},
		{"unshare of files", seccompData(arch, unix.SYS_UNSHARE, unix.CLONE_FILES), allow},
		{"clone3", seccompData(arch, unix.SYS_CLONE3), enos},
		{"mount", seccompData(arch, unix.SYS_MOUNT), eperm},
		{"keyctl", seccompData(arch, unix.SYS_KEYCTL), eperm},
		{"setns", seccompData(arch, unix.SYS_SETNS), eperm},
		{"write", seccompData(arch, unix.SYS_WRITE, 1), allow},
		{"execve", seccompData(arch, unix.SYS_EXECVE), allow},
		{"another ABI", seccompData(arch^1, unix.SYS_WRITE), enos},
	} {
		got, err := vm.Run(c.data)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if uint32(got) != c.want {
			t.Errorf("%s: filter returned %#x, want %#x", c.name, uint32(got), c.want)
		}
	}
	if enc := encodeSeccomp(raw); len(enc) != 16*len(raw) {
		t.Errorf("encoded program is %d hex digits for %d instructions", len(enc), len(raw))
	}
}

func TestSeccompUnknownSyscall(t *testing.T) {
	if _, err := compileSeccomp([]sandbox.SyscallRule{{Names: []string{"no_such_call"}, Errno: 1}}); err == nil {
		t.Error("an unknown system call name was accepted")
	}
	if _, err := capabilityMask([]string{"CAP_NOPE"}); err == nil {
		t.Error("an unknown capability was accepted")
	}
}

// TestSeccompSkipOwnership: with the single mapping, chown and setgroups succeed without
// running; with a range they run.
func TestSeccompSkipOwnership(t *testing.T) {
	for _, c := range []struct {
		uidMap []sandbox.IDMap
		want   uint32
	}{
		{[]sandbox.IDMap{{ContainerID: 0, HostID: 1000, Size: 1}}, seccompRetErrno},
		{[]sandbox.IDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}, seccompRetAllow},
	} {
		vm, _ := seccompVM(t, sandbox.SecurityFor(c.uidMap).Syscalls)
		for _, nr := range []uint32{unix.SYS_FCHOWNAT, unix.SYS_FCHOWN, unix.SYS_SETGROUPS} {
			got, err := vm.Run(seccompData(uint32(seccompArch), nr, 0, 42, 42))
			if err != nil || uint32(got) != c.want {
				t.Errorf("map %v, call %d: filter returned %#x (%v), want %#x", c.uidMap, nr, uint32(got), err, c.want)
			}
		}
	}
}
