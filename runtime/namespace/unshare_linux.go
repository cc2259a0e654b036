package namespace

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
)

// unshareArg is the hidden argv[1] that sends a re-executed binary into nsinit.c's
// unshare_main.
const unshareArg = "__karapace_unshare"

// Unshare runs argv as root of a new user namespace with the caller's id map (0 -> the
// caller, 1..N -> its subordinate range when it has one), as `podman unshare` does: files that
// package scripts gave to system users of an environment (host ids of the range) are
// the command's own there, to inspect or remove. Only the user namespace is new. Run as
// root, the command runs directly: root needs no map. It returns the command's exit
// status (127 and 126 when it cannot be started, 125 with an error for a launcher
// failure).
func Unshare(ctx context.Context, argv []string, stdio runtime.Stdio, env []string, opts Options) (int, error) {
	if len(argv) == 0 {
		return 125, fmt.Errorf("%w: empty argv", runtime.ErrExecFailed)
	}
	if os.Geteuid() == 0 {
		return runDirect(ctx, argv, stdio, env)
	}
	ids, err := callerIDMaps()
	if err != nil {
		return 125, err
	}
	parentEnd, childEnd, err := syncSocket()
	if err != nil {
		return 125, err
	}
	defer parentEnd.Close()
	exe := opts.executable()
	cmd := &exec.Cmd{
		Path:        exe,
		Args:        append([]string{"karapace-unshare", unshareArg}, argv...),
		Env:         env,
		Stdin:       stdio.Stdin,
		Stdout:      stdio.Stdout,
		Stderr:      stdio.Stderr,
		ExtraFiles:  []*os.File{childEnd},
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if err := cmd.Start(); err != nil {
		childEnd.Close()
		return 125, fmt.Errorf("%w: start %s: %w", runtime.ErrExecFailed, exe, err)
	}
	childEnd.Close()
	fail := func(err error) (int, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 125, err
	}
	m, _, err := readMsg(parentEnd)
	if err != nil {
		return fail(fmt.Errorf("%w: the unshare helper did not start (is %s built with this package?): %w", ErrSetup, exe, err))
	}
	if m.typ == msgError {
		return fail(m.err())
	}
	if err := writeIDMaps(ctx, cmd.Process.Pid, ids.UID, ids.GID); err != nil {
		return fail(fmt.Errorf("%w: id maps: %w", ErrSetup, err))
	}
	if err := binary.Write(parentEnd, binary.NativeEndian, uint32(1)); err != nil {
		return fail(fmt.Errorf("%w: release the unshare helper: %w", ErrSetup, err))
	}
	// An error report comes before EOF; EOF means the command was exec'd.
	var setupErr error
	if m, _, err := readMsg(parentEnd); err == nil && m.typ == msgError {
		setupErr = m.err()
	} else if err != nil && !errors.Is(err, io.EOF) {
		setupErr = fmt.Errorf("sync socket: %w", err)
	}
	waitErr := cmd.Wait()
	code := exitStatus(cmd.ProcessState, waitErr)
	return code, setupErr
}

// runDirect runs argv as the caller, in no new namespace.
func runDirect(ctx context.Context, argv []string, stdio runtime.Stdio, env []string) (int, error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = env, stdio.Stdin, stdio.Stdout, stdio.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return exitStatus(cmd.ProcessState, err), nil
	case errors.Is(err, exec.ErrNotFound):
		return 127, fmt.Errorf("%w: %w", runtime.ErrExecFailed, err)
	default:
		return 126, fmt.Errorf("%w: %w", runtime.ErrExecFailed, err)
	}
}

// callerIDMaps is the caller's id mapping, as sessions get it.
func callerIDMaps() (sandbox.IDMapping, error) {
	uid, gid := os.Getuid(), os.Getgid()
	name := strconv.Itoa(uid)
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return sandbox.IDMaps(sandbox.IDSource{User: name, UID: uint32(uid), GID: uint32(gid)})
}

// RemoveTree removes path, a tree of an environment: directly when that works, else
// (files owned by the caller's subordinate ids, which only root of a user namespace
// with the caller's map may unlink) with `rm -rf` run through Unshare. A missing path is
// not an error.
func RemoveTree(ctx context.Context, path string) error {
	err := os.RemoveAll(path)
	if err == nil || !errors.Is(err, os.ErrPermission) || os.Geteuid() == 0 {
		return err
	}
	var out limitedBuffer
	code, uerr := Unshare(ctx, []string{"rm", "-rf", "--", path}, runtime.Stdio{Stdout: &out, Stderr: &out},
		[]string{"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}, Options{})
	if uerr != nil {
		return fmt.Errorf("remove %s: %w (and as root of a user namespace with your id map: %w)", path, err, uerr)
	}
	if code != 0 {
		return fmt.Errorf("remove %s: %w (and as root of a user namespace with your id map, rm exited %d: %s)", path, err, code, out.String())
	}
	return nil
}

// limitedBuffer keeps the first 4 KiB written to it.
type limitedBuffer struct{ b []byte }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := 4096 - len(l.b); room > 0 {
		if len(p) < room {
			room = len(p)
		}
		l.b = append(l.b, p[:room]...)
	}
	return len(p), nil
}

func (l *limitedBuffer) String() string { return string(l.b) }
