package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/provision"
	"github.com/karapace/karapace/runtime/sandbox"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// A session, step by step:
//
//	karapace (Go)                      shim (C constructor)             runtime
//	  write bundle/config.json
//	  start /proc/self/exe shimArg ──►  new mount ns (+ user ns when unprivileged)
//	  write id maps (unprivileged)
//	  one byte on fd 3 ─────────────►   guard(): prove the namespaces
//	                                    mount overlay on merged,
//	                                    cover cgroup/unified (crun)
//	                                    exec ─────────────────────────► run --bundle B ID
//	  ctx cancelled: `kill ID TERM`, after grace `kill ID KILL`          container exits
//	  wait, `delete --force ID`, remove scratch  ◄──────────────────── exit status
//
// The overlay exists only in the shim's mount namespace (and the container's copy of
// it); when the runtime exits, both are gone and nothing was ever mounted on the host.

// scratchPrefix starts the name of a session's scratch directory under <env>/work.
const scratchPrefix = "oci-"

// pidFile, in a session's scratch directory, is where the runtime writes the container's
// init pid. It outlives a crash of karapace and of the runtime, and finds a container
// the runtime no longer reports as running (crun, killed during `run`, may call it
// stopped while its process lives on).
const pidFile = "pid"

// runtimeFile, in a session's scratch directory, records the runtime process of the
// session ("<pid> <start time, unix ns>").
const runtimeFile = "runtime"

// containerPrefix is the prefix of every container of an environment.
func containerPrefix(id string) string { return "karapace-" + id + "-" }

// stateRoot is the runtime's --root: per store, so stores never see each other's
// containers.
func stateRoot(spec *runtime.Spec) string { return filepath.Join(spec.StoreRoot, "oci-state") }

// session runs plan under rt and returns the command's exit status.
func (b *Backend) session(ctx context.Context, spec *runtime.Spec, rt Runtime, plan *sandbox.Plan, stdio runtime.Stdio) (int, error) {
	root := os.Geteuid() == 0
	if err := os.MkdirAll(plan.Root.Work, 0o700); err != nil {
		return 125, fmt.Errorf("create work directory: %w", err)
	}
	scratch, err := os.MkdirTemp(plan.Root.Work, scratchPrefix)
	if err != nil {
		return 125, fmt.Errorf("create session directory: %w", err)
	}
	defer provision.RemoveScratch(scratch, b.log)
	work, merged, bundle := filepath.Join(scratch, "work"), filepath.Join(scratch, "merged"), filepath.Join(scratch, "bundle")
	for _, d := range []string{work, merged, bundle} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return 125, fmt.Errorf("create session directory: %w", err)
		}
	}
	ovl, err := overlayData(plan.Root, work, !root)
	if err != nil {
		return 125, err
	}
	co := ConfigOptions{RootPath: merged, UIDMap: plan.UIDMap, GIDMap: plan.GIDMap, Limits: root, Exists: exists, Devices: hostDevices}
	if !root && (plan.Limits.CPUShares > 0 || plan.Limits.MemoryBytes > 0) {
		b.log.Warn("resource limits are not applied: a rootless OCI runtime needs a delegated cgroup", "runtime", rt.Name)
	}
	if !root {
		// The shim's user namespace already carries the plan's maps; the runtime, root
		// in it, maps the container onto the same ids.
		co.UIDMap, co.GIDMap = identity(plan.UIDMap), identity(plan.GIDMap)
	}
	if f, ok := stdio.Stdin.(*os.File); ok && plan.TTY {
		if ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ); err == nil && ws.Row > 0 {
			co.ConsoleSize = &specs.Box{Height: uint(ws.Row), Width: uint(ws.Col)}
		}
	}
	cfg, err := Config(plan, co)
	if err != nil {
		return 125, err
	}
	if err := writeConfig(filepath.Join(bundle, "config.json"), cfg); err != nil {
		return 125, err
	}
	state := stateRoot(spec)
	if err := os.MkdirAll(state, 0o700); err != nil {
		return 125, fmt.Errorf("create OCI state directory: %w", err)
	}
	// The container is named after its scratch directory, so that whoever deletes a
	// container left by a crash finds its scratch too.
	id := containerPrefix(spec.EnvID.Short()) + strings.TrimPrefix(filepath.Base(scratch), "oci-")
	cmd, release, err := b.shim(rt, plan, ovl, merged, "--root", state, "run", "--pid-file", filepath.Join(scratch, pidFile), "--bundle", bundle, id)
	if err != nil {
		return 125, err
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	if err := cmd.Start(); err != nil {
		release(false)
		return 125, fmt.Errorf("%w: start %s run: %w", runtime.ErrExecFailed, rt.Name, err)
	}
	if err := release(true); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 125, err
	}
	if start, _, err := processStart(cmd.Process.Pid); err == nil {
		// While this process lives, the runtime owns the container; Status looks for
		// orphans only once it is gone.
		rec := fmt.Sprintf("%d %d\n", cmd.Process.Pid, start.UnixNano())
		if err := os.WriteFile(filepath.Join(scratch, runtimeFile), []byte(rec), 0o600); err != nil {
			b.log.Warn("record the runtime process", "err", err)
		}
	}
	defer func() {
		// `run` in the foreground deletes its container; this covers a runtime that died.
		// (Asking when the state is gone would recreate the state directory.)
		if _, err := os.Stat(filepath.Join(state, id)); err != nil {
			return
		}
		_ = b.control(context.WithoutCancel(ctx), rt, plan, nil, "--root", state, "delete", "--force", id)
	}()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err = <-waited:
	case <-ctx.Done():
		b.log.Info("cancelled: stopping container", "id", id)
		_ = b.control(context.WithoutCancel(ctx), rt, plan, nil, "--root", state, "kill", id, "TERM")
		select {
		case err = <-waited:
		case <-time.After(b.opts.Grace):
			_ = b.control(context.WithoutCancel(ctx), rt, plan, nil, "--root", state, "kill", id, "KILL")
			err = <-waited
		}
	}
	code := exitStatus(cmd.ProcessState)
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 125, fmt.Errorf("%w: %s run: %w", runtime.ErrExecFailed, rt.Name, err)
	}
	return code, nil
}

// shim prepares the command that starts the runtime through shim.c with args. release
// must be called after Start (true) or after a failed Start (false): it writes the id
// maps of an unprivileged shim and lets it go on.
func (b *Backend) shim(rt Runtime, plan *sandbox.Plan, overlay, merged string, args ...string) (*exec.Cmd, func(bool) error, error) {
	ino, err := nsInode("mnt")
	if err != nil {
		return nil, nil, err
	}
	hide := "0"
	if rt.HideUnified {
		hide = "1"
	}
	root := os.Geteuid() == 0
	wait := "0"
	if !root {
		wait = "1"
	}
	exe := b.opts.Executable
	if exe == "" {
		exe = "/proc/self/exe"
	}
	argv := append([]string{"karapace-oci-shim", shimArg, strconv.FormatUint(ino, 10), wait, hide, overlay, merged, rt.Path}, args...)
	cmd := &exec.Cmd{Path: exe, Args: argv, Env: runtimeEnv()}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if root {
		cmd.SysProcAttr.Unshareflags = syscall.CLONE_NEWNS
		cmd.Env = append(cmd.Env, "KARAPACE_OCI_SHIM_HOST_ROOT=1")
		return cmd, func(bool) error { return nil }, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS
	release := func(started bool) error {
		r.Close()
		defer w.Close()
		if !started {
			return nil
		}
		if err := writeIDMaps(cmd.Process.Pid, plan.UIDMap, plan.GIDMap); err != nil {
			return fmt.Errorf("%w: map the shim's user namespace: %w", runtime.ErrExecFailed, err)
		}
		if _, err := w.Write([]byte{1}); err != nil {
			return fmt.Errorf("%w: release the shim: %w", runtime.ErrExecFailed, err)
		}
		return nil
	}
	return cmd, release, nil
}

// control runs one runtime command (state, kill, delete) and returns its stdout. It goes
// through the shim when the runtime must not see the hybrid cgroup mount; plan gives the
// id maps then (nil: the caller's own).
func (b *Backend) control(ctx context.Context, rt Runtime, plan *sandbox.Plan, stdout *strings.Builder, args ...string) error {
	var cmd *exec.Cmd
	release := func(bool) error { return nil }
	if rt.HideUnified {
		if plan == nil {
			m, err := b.mapping()
			if err != nil {
				return err
			}
			plan = &sandbox.Plan{UIDMap: m.UID, GIDMap: m.GID}
		}
		var err error
		cmd, release, err = b.shim(rt, plan, "", "", args...)
		if err != nil {
			return err
		}
	} else {
		cmd = exec.Command(rt.Path, args...)
		cmd.Env = runtimeEnv()
	}
	var errb strings.Builder
	cmd.Stdout, cmd.Stderr = stdout, &errb
	if stdout == nil {
		cmd.Stdout = nil
	}
	if err := cmd.Start(); err != nil {
		release(false)
		return fmt.Errorf("%w: %s %s: %w", runtime.ErrExecFailed, rt.Name, strings.Join(args, " "), err)
	}
	if err := release(true); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
	if err != nil {
		return &controlError{argv: args, stderr: strings.TrimSpace(errb.String()), err: err}
	}
	return nil
}

// controlError is a failed runtime command with its own words.
type controlError struct {
	argv   []string
	stderr string
	err    error
}

func (e *controlError) Error() string {
	return fmt.Sprintf("%s: %s", strings.Join(e.argv, " "), e.stderr)
}

func (e *controlError) Unwrap() []error { return []error{runtime.ErrExecFailed, e.err} }

// notExist reports whether a runtime command failed because the container is gone.
func notExist(err error) bool {
	var ce *controlError
	if !errors.As(err, &ce) {
		return false
	}
	s := strings.ToLower(ce.stderr)
	return strings.Contains(s, "does not exist") || strings.Contains(s, "not found") || strings.Contains(s, "no such file or directory")
}

func runtimeEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := []string{"PATH=" + path}
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		env = append(env, "XDG_RUNTIME_DIR="+x)
	}
	return env
}

func writeConfig(path string, cfg *specs.Spec) error {
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config.json: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write config.json: %w", err)
	}
	return nil
}

// overlayData is the overlay mount option string of a session root. An unprivileged
// caller mounts inside its user namespace, where overlayfs keeps its metadata in user.*
// extended attributes (userxattr).
func overlayData(r sandbox.Root, work string, userxattr bool) (string, error) {
	lowers := append([]string(nil), r.Lower...)
	if r.ReadOnly {
		// A frozen root: the upper layer becomes the topmost lower, and with no upper
		// directory the overlay cannot be written at all.
		lowers = append([]string{r.Upper}, lowers...)
	}
	if len(lowers) == 0 {
		return "", errors.New("overlay root: no lower layer")
	}
	paths := append([]string{r.Upper, work}, lowers...)
	for _, p := range paths {
		if !filepath.IsAbs(p) || strings.ContainsAny(p, ",:\\\x00") {
			return "", fmt.Errorf("overlay root: path %q is not absolute or holds ',', ':', '\\' or NUL", p)
		}
	}
	opts := "lowerdir=" + strings.Join(lowers, ":")
	if !r.ReadOnly {
		opts += ",upperdir=" + r.Upper + ",workdir=" + work
	}
	if userxattr {
		opts += ",userxattr"
	}
	return opts, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// hostDevices lists the device cgroup rules for a device node or a directory of them.
func hostDevices(p string) []specs.LinuxDeviceCgroup {
	var out []specs.LinuxDeviceCgroup
	_ = filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		var st unix.Stat_t
		if unix.Stat(q, &st) != nil {
			return nil
		}
		typ := ""
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFCHR:
			typ = "c"
		case unix.S_IFBLK:
			typ = "b"
		default:
			return nil
		}
		out = append(out, specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: ptr(int64(unix.Major(st.Rdev))), Minor: ptr(int64(unix.Minor(st.Rdev))), Access: "rwm"})
		return nil
	})
	return out
}

func nsInode(kind string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/"+kind, &st); err != nil {
		return 0, fmt.Errorf("identify own %s namespace: %w", kind, err)
	}
	return st.Ino, nil
}

func formatMap(m []sandbox.IDMap) string {
	var b strings.Builder
	for _, e := range m {
		fmt.Fprintf(&b, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
	}
	return b.String()
}

// writeIDMaps maps an unprivileged shim's user namespace: a single self-mapping directly
// (after denying setgroups, as the kernel requires), anything wider with
// newuidmap/newgidmap.
func writeIDMaps(pid int, uidMap, gidMap []sandbox.IDMap) error {
	proc := "/proc/" + strconv.Itoa(pid)
	single := func(m []sandbox.IDMap, id int) bool { return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id }
	if single(uidMap, os.Geteuid()) && single(gidMap, os.Getegid()) {
		for _, f := range [][2]string{{"setgroups", "deny"}, {"gid_map", formatMap(gidMap)}, {"uid_map", formatMap(uidMap)}} {
			if err := os.WriteFile(proc+"/"+f[0], []byte(f[1]), 0); err != nil {
				return fmt.Errorf("write %s: %w", f[0], err)
			}
		}
		return nil
	}
	run := func(tool string, m []sandbox.IDMap) error {
		args := []string{strconv.Itoa(pid)}
		for _, e := range m {
			args = append(args, strconv.FormatUint(uint64(e.ContainerID), 10), strconv.FormatUint(uint64(e.HostID), 10), strconv.FormatUint(uint64(e.Size), 10))
		}
		out, err := exec.Command(tool, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	if err := run("newgidmap", gidMap); err != nil {
		return err
	}
	return run("newuidmap", uidMap)
}

func exitStatus(ps *os.ProcessState) int {
	if ps == nil {
		return 125
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Exited():
			return ws.ExitStatus()
		case ws.Signaled():
			return 128 + int(ws.Signal())
		}
	}
	return 125
}
