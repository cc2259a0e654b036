package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/runtime/pkgmgr"
	"github.com/karapace/karapace/runtime/provision"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/schema"
	"golang.org/x/sys/unix"
)

// Layout of an environment directory, shared with the namespace backend so that an
// environment built by one runs under the other.
const (
	upperDir  = provision.UpperDir  // the environment's writable layer
	workDir   = provision.WorkDir   // per-session scratch (overlay work dir, merged root, bundle)
	lowerLink = provision.LowerLink // symlink to the image rootfs, written by Build
)

// Options configure New.
type Options struct {
	Logger *slog.Logger
	// Images is the image cache; nil means image.NewCache(storeRoot).
	Images func(storeRoot string) *image.Cache
	// Host gives the host facts plans are computed from; default sandbox.HostFromOS.
	Host func() sandbox.Host
	// Runtime is where runtime selection looks (PATH, KARAPACE_OCI_RUNTIME, cgroups).
	Runtime Host
	// Grace is how long a cancelled session has between SIGTERM and SIGKILL (default 5s).
	Grace time.Duration
	// Executable is the binary holding the shim; default /proc/self/exe.
	Executable string
}

// Backend is the OCI runtime backend.
type Backend struct {
	log  *slog.Logger
	opts Options

	mu sync.Mutex
	rt *Runtime // the selected runtime, once found
}

var _ runtime.Backend = (*Backend)(nil)

// New returns the OCI backend.
func New(opts Options) *Backend {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Images == nil {
		opts.Images = func(root string) *image.Cache { return image.NewCache(root, image.WithLogger(opts.Logger)) }
	}
	if opts.Host == nil {
		opts.Host = sandbox.HostFromOS
	}
	if opts.Grace <= 0 {
		opts.Grace = 5 * time.Second
	}
	return &Backend{log: opts.Logger, opts: opts}
}

// Name implements runtime.Backend.
func (b *Backend) Name() string { return "oci" }

// Runtime is the OCI runtime this backend uses here, and what it works around.
// The choice is made once per Backend (a failed search is retried).
func (b *Backend) Runtime(ctx context.Context) (Runtime, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rt != nil {
		return *b.rt, nil
	}
	rt, err := Select(ctx, b.opts.Runtime)
	if err != nil {
		return Runtime{}, err
	}
	b.rt = &rt
	return rt, nil
}

// Available implements runtime.Backend: an OCI runtime that answers --version, and user
// namespaces (every container is rootless).
func (b *Backend) Available(ctx context.Context) error {
	if _, err := b.Runtime(ctx); err != nil {
		return err
	}
	if v, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(v)) == "0" {
		return fmt.Errorf("%w: user namespaces are disabled (enable with: sysctl user.max_user_namespaces=15000)", runtime.ErrBackendUnavailable)
	}
	return nil
}

func (b *Backend) mapping() (sandbox.IDMapping, error) {
	h := b.opts.Host()
	return sandbox.IDMaps(sandbox.IDSource{User: h.User, UID: h.UID, GID: h.GID})
}

func (b *Backend) inputs(spec *runtime.Spec, lower, upper, work string) (sandbox.Inputs, error) {
	ids, err := b.mapping()
	if err != nil {
		return sandbox.Inputs{}, err
	}
	in := sandbox.InputsFor(spec)
	in.Lower, in.Upper, in.Work = []string{lower}, upper, work
	if in.HostsFile, in.HostnameFile, err = provision.HostFiles(spec.EnvDir, spec.EnvID); err != nil {
		return sandbox.Inputs{}, err
	}
	in.Host, in.UIDMap, in.GIDMap = b.opts.Host(), ids.UID, ids.GID
	return in, nil
}

// pkgRunner runs package manager commands under the OCI runtime, in a build sandbox
// over the environment (pkgmgr.Runner).
type pkgRunner struct {
	b    *Backend
	rt   Runtime
	spec *runtime.Spec
	in   sandbox.Inputs
}

func (r pkgRunner) Run(ctx context.Context, argv []string, o pkgmgr.RunOptions) (pkgmgr.Result, error) {
	in := r.in
	in.Build, in.Argv, in.ReadOnly = true, argv, false
	in.ExtraEnv = map[string]string{}
	for _, kv := range o.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			in.ExtraEnv[k] = v
		}
	}
	plan, err := sandbox.Compute(in)
	if err != nil {
		return pkgmgr.Result{}, err
	}
	var stdout, stderr bytes.Buffer
	stdio := runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	if o.Log != nil {
		stdio.Stdout, stdio.Stderr = io.MultiWriter(&stdout, o.Log), io.MultiWriter(&stderr, o.Log)
	}
	code, err := r.b.session(ctx, r.spec, r.rt, plan, stdio)
	return pkgmgr.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}, err
}

// Resolve implements runtime.Resolver: the image digest and the exact version of every
// package, asked of the image's package manager under the OCI runtime in a throwaway
// overlay.
func (b *Backend) Resolve(ctx context.Context, spec *runtime.Spec) (schema.Resolution, error) {
	img, err := provision.Image(ctx, spec, b.opts.Images(spec.StoreRoot))
	if err != nil {
		return schema.Resolution{}, err
	}
	return provision.Resolve(ctx, spec, img, b.buildSandbox(spec), b.log)
}

// Build implements runtime.Builder: the image, the environment's layers and the exact
// package versions, installed into the upper layer under the OCI runtime.
func (b *Backend) Build(ctx context.Context, spec *runtime.Spec) error {
	img, err := provision.Image(ctx, spec, b.opts.Images(spec.StoreRoot))
	if err != nil {
		return err
	}
	note := ""
	if len(spec.Packages) > 0 && !spec.Offline {
		if rt, err := b.Runtime(ctx); err == nil {
			note = fmt.Sprintf("[karapace/oci] installing %d packages with %s", len(spec.Packages), rt.Name)
		}
	}
	return provision.Build(ctx, spec, img, b.buildSandbox(spec), note, b.log)
}

// buildSandbox runs package-manager commands under the OCI runtime, in a build sandbox
// over the given layers.
func (b *Backend) buildSandbox(spec *runtime.Spec) provision.Sandbox {
	return func(ctx context.Context, lower, upper, work string) (pkgmgr.Runner, error) {
		rt, err := b.Runtime(ctx)
		if err != nil {
			return nil, err
		}
		in, err := b.inputs(spec, lower, upper, work)
		if err != nil {
			return nil, err
		}
		return pkgRunner{b: b, rt: rt, spec: spec, in: in}, nil
	}
}

// Exec implements runtime.Runner with `<runtime> run`.
func (b *Backend) Exec(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string) (int, error) {
	if len(argv) == 0 {
		return 125, fmt.Errorf("%w: exec needs a command", runtime.ErrExecFailed)
	}
	return b.run(ctx, spec, stdio, argv, false)
}

// Enter implements runtime.Runner: with a terminal on stdin the container gets one of
// its own (process.terminal), which the runtime connects to ours.
func (b *Backend) Enter(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string) (int, error) {
	tty := false
	if f, ok := stdio.Stdin.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
	}
	return b.run(ctx, spec, stdio, argv, tty)
}

func (b *Backend) run(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string, tty bool) (int, error) {
	rt, err := b.Runtime(ctx)
	if err != nil {
		return 125, err
	}
	lower, err := provision.Lower(spec, b.opts.Images(spec.StoreRoot))
	if err != nil {
		return 125, err
	}
	in, err := b.inputs(spec, lower, filepath.Join(spec.EnvDir, upperDir), filepath.Join(spec.EnvDir, workDir))
	if err != nil {
		return 125, err
	}
	in.Argv, in.TTY = argv, tty
	in.ExtraEnv, in.SSHAgent = spec.Env, spec.SSHAgent
	plan, err := sandbox.Compute(in)
	if err != nil {
		return 125, err
	}
	return b.session(ctx, spec, rt, plan, stdio)
}

// container is one of an environment's containers as the runtime reports it.
type container struct {
	ID     string
	Status string // created, running, paused, or orphaned (alive, unknown to the runtime)
	PID    int
}

// containers lists the environment's live containers: those the runtime reports as
// created, running or paused, and those whose init, recorded in the session's pid file,
// lives on although the runtime calls them stopped or gone (after a crash). Stopped
// containers whose process is gone are deleted, with their scratch, on the way.
func (b *Backend) containers(ctx context.Context, spec *runtime.Spec, rt Runtime) ([]container, error) {
	state := stateRoot(spec)
	prefix := containerPrefix(spec.EnvID.Short())
	work := filepath.Join(spec.EnvDir, workDir)
	ids := map[string]bool{} // id -> has runtime state
	ents, err := os.ReadDir(state)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read OCI state directory: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), prefix) {
			ids[e.Name()] = true
		}
	}
	scratches, _ := os.ReadDir(work)
	for _, e := range scratches {
		if strings.HasPrefix(e.Name(), scratchPrefix) {
			if _, err := os.Stat(filepath.Join(work, e.Name(), pidFile)); err == nil {
				id := prefix + strings.TrimPrefix(e.Name(), scratchPrefix)
				if _, ok := ids[id]; !ok {
					ids[id] = false
				}
			}
		}
	}
	var out []container
	for id, hasState := range ids {
		scratch := filepath.Join(work, scratchPrefix+strings.TrimPrefix(id, prefix))
		if hasState {
			var stdout strings.Builder
			err := b.control(ctx, rt, nil, &stdout, "--root", state, "state", id)
			if err != nil && !notExist(err) {
				return nil, err
			}
			if err == nil {
				var st struct {
					Status string `json:"status"`
					PID    int    `json:"pid"`
				}
				if err := json.Unmarshal([]byte(stdout.String()), &st); err != nil {
					return nil, fmt.Errorf("parse %s state output: %w", rt.Name, err)
				}
				if st.Status != "stopped" && st.PID > 0 {
					out = append(out, container{ID: id, Status: st.Status, PID: st.PID})
					continue
				}
			}
		}
		if runtimeAlive(scratch) {
			// The session's runtime is still at work (starting or finishing the
			// container): nothing is orphaned, and nothing is ours to delete.
			continue
		}
		if pid := orphan(scratch); pid > 0 {
			out = append(out, container{ID: id, Status: "orphaned", PID: pid})
			continue
		}
		if pids := overlayUsers(filepath.Join(scratch, "work")); len(pids) > 0 {
			// Killed before the runtime recorded anything: its processes are found by
			// the overlay they have mounted.
			for _, pid := range pids {
				out = append(out, container{ID: id, Status: "orphaned", PID: pid})
			}
			continue
		}
		if !hasState {
			// A session starting right now has a scratch directory and no state yet;
			// only an old one is a crash's leftover (Destroy removes them all).
			if fi, err := os.Stat(scratch); err != nil || time.Since(fi.ModTime()) < time.Minute {
				continue
			}
		}
		if hasState {
			b.log.Info("deleting a stopped container", "id", id)
			if err := b.control(ctx, rt, nil, nil, "--root", state, "delete", "--force", id); err != nil && !notExist(err) {
				return nil, err
			}
		}
		provision.RemoveScratch(scratch, b.log)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// orphan returns the pid recorded in a session's pid file when that process still
// runs and is the one the runtime started: it began no later than the file was written
// and is not a zombie. 0 otherwise.
func orphan(scratch string) int {
	p := filepath.Join(scratch, pidFile)
	data, err := os.ReadFile(p)
	if err != nil {
		return 0
	}
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0
	}
	started, zombie, err := processStart(pid)
	if err != nil || zombie || started.After(fi.ModTime().Add(time.Second)) {
		return 0
	}
	return pid
}

// runtimeAlive reports whether the runtime process recorded in a session's scratch
// directory still runs.
func runtimeAlive(scratch string) bool {
	data, err := os.ReadFile(filepath.Join(scratch, runtimeFile))
	if err != nil {
		return false
	}
	var pid int
	var start int64
	if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil || pid <= 0 {
		return false
	}
	now, zombie, err := processStart(pid)
	return err == nil && !zombie && now.UnixNano() == start
}

// overlayUsers returns the processes whose mount namespace holds an overlay with the
// given work directory: the processes of one session's container.
func overlayUsers(work string) []int {
	needle := []byte("workdir=" + work)
	procs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, p := range procs {
		data, err := os.ReadFile(filepath.Join(p, "mountinfo"))
		if err != nil || !bytes.Contains(data, needle) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(p)); err == nil && pid != os.Getpid() {
			if _, zombie, err := processStart(pid); err == nil && !zombie {
				out = append(out, pid)
			}
		}
	}
	return out
}

// processStart is when pid started (from /proc/<pid>/stat and the boot time), and
// whether it is a zombie.
func processStart(pid int) (time.Time, bool, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return time.Time{}, false, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return time.Time{}, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return time.Time{}, false, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	ticks, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false, err
	}
	st, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false, err
	}
	var btime int64
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			btime, _ = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	const clockTicks = 100 // USER_HZ, fixed at 100 in the kernel ABI on Linux
	start := time.Unix(btime, 0).Add(time.Duration(ticks) * time.Second / clockTicks)
	return start, f[0] == "Z", nil
}

// Status implements runtime.Runner from `<runtime> state`.
func (b *Backend) Status(ctx context.Context, spec *runtime.Spec) (runtime.Status, error) {
	rt, err := b.Runtime(ctx)
	if err != nil {
		return runtime.Status{}, err
	}
	cs, err := b.containers(ctx, spec, rt)
	if err != nil {
		return runtime.Status{}, err
	}
	st := runtime.Status{EnvID: spec.EnvID, Running: len(cs) > 0}
	for _, c := range cs {
		st.PIDs = append(st.PIDs, c.PID)
	}
	return st, nil
}

// Stop implements runtime.Runner with `<runtime> kill`: SIGTERM to every container,
// SIGKILL to those still running after grace.
func (b *Backend) Stop(ctx context.Context, spec *runtime.Spec, grace time.Duration) error {
	rt, err := b.Runtime(ctx)
	if err != nil {
		return err
	}
	cs, err := b.containers(ctx, spec, rt)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("%w: %s", runtime.ErrNotRunning, spec.EnvID.Short())
	}
	state := stateRoot(spec)
	kill := func(cs []container, sig string) error {
		for _, c := range cs {
			if c.Status == "orphaned" {
				// The runtime no longer knows it; the init is PID 1 of the container's
				// PID namespace, so SIGKILL to it ends the whole container.
				s := syscall.SIGTERM
				if sig == "KILL" {
					s = syscall.SIGKILL
				}
				if err := syscall.Kill(c.PID, s); err != nil && !errors.Is(err, syscall.ESRCH) {
					b.log.Debug("kill", "pid", c.PID, "err", err)
				}
				continue
			}
			if err := b.control(ctx, rt, nil, nil, "--root", state, "kill", c.ID, sig); err != nil && !notExist(err) {
				// A container that stopped meanwhile refuses the signal; the next state
				// call tells.
				b.log.Debug("kill", "id", c.ID, "signal", sig, "err", err)
			}
		}
		return nil
	}
	_ = kill(cs, "TERM")
	deadline := time.Now().Add(grace)
	killed := false
	for {
		live, err := b.containers(ctx, spec, rt)
		if err != nil {
			return err
		}
		if len(live) == 0 {
			return nil
		}
		if !killed && !time.Now().Before(deadline) {
			b.log.Info("containers did not exit after SIGTERM, sending SIGKILL", "count", len(live))
			_ = kill(live, "KILL")
			killed = true
			deadline = time.Now().Add(10 * time.Second)
		} else if killed && !time.Now().Before(deadline) {
			return fmt.Errorf("%w: containers of %s survived SIGKILL", runtime.ErrExecFailed, spec.EnvID.Short())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
}

// Destroy implements runtime.Builder: it stops and deletes every container of the
// environment and removes its session scratch; the per-store state directory goes when
// it is empty.
func (b *Backend) Destroy(ctx context.Context, spec *runtime.Spec) error {
	if rt, err := b.Runtime(ctx); err == nil {
		if err := b.Stop(ctx, spec, 0); err != nil && !errors.Is(err, runtime.ErrNotRunning) {
			return err
		}
		// Anything left (a container the runtime no longer knows as running).
		state := stateRoot(spec)
		ents, _ := os.ReadDir(state)
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), containerPrefix(spec.EnvID.Short())) {
				if err := b.control(ctx, rt, nil, nil, "--root", state, "delete", "--force", e.Name()); err != nil && !notExist(err) {
					return err
				}
			}
		}
		_ = os.Remove(state)
	}
	work := filepath.Join(spec.EnvDir, workDir)
	if ents, err := os.ReadDir(work); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), scratchPrefix) {
				provision.RemoveScratch(filepath.Join(work, e.Name()), b.log)
			}
		}
	}
	return nil
}
