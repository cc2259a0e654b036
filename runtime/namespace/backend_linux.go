package namespace

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/runtime/pkgmgr"
	"github.com/karapace/karapace/runtime/provision"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/schema"
)

// Layout of an environment directory (spec.EnvDir) owned by this backend.
const (
	upperDir    = provision.UpperDir   // the environment's writable layer
	workDir     = provision.WorkDir    // per-session overlay work dirs and the setup lock
	lowerLink   = provision.LowerLink  // symlink to the image rootfs, written by Build
	sessionsDir = "sessions"           // one file per live session: "<pid> <start time>"
	aptConfFile = "apt-single-id.conf" // sandbox.AptSingleIDConf, bound with the single mapping
)

// BackendOptions configure New.
type BackendOptions struct {
	Logger *slog.Logger
	// Images is the image cache; nil means image.NewCache(spec.StoreRoot) per call.
	Images func(storeRoot string) *image.Cache
	// Host gives the host facts plans are computed from; default sandbox.HostFromOS.
	Host func() sandbox.Host
	// Run is passed to every session (overlay driver, grace period, ...).
	Run Options
}

// Backend is the namespace runtime backend.
type Backend struct {
	log  *slog.Logger
	opts BackendOptions
}

var _ runtime.Backend = (*Backend)(nil)

// New returns the namespace backend.
func New(opts BackendOptions) *Backend {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Images == nil {
		opts.Images = func(root string) *image.Cache { return image.NewCache(root, image.WithLogger(opts.Logger)) }
	}
	if opts.Host == nil {
		opts.Host = sandbox.HostFromOS
	}
	return &Backend{log: opts.Logger, opts: opts}
}

// Name implements runtime.Backend.
func (b *Backend) Name() string { return "namespace" }

// Available reports whether user namespaces can be created here.
func (b *Backend) Available(ctx context.Context) error {
	for file, hint := range map[string]string{
		"/proc/sys/user/max_user_namespaces":         "sysctl user.max_user_namespaces=15000",
		"/proc/sys/kernel/unprivileged_userns_clone": "sysctl kernel.unprivileged_userns_clone=1",
	} {
		v, err := os.ReadFile(file)
		if err != nil {
			continue // the knob does not exist on this kernel
		}
		if strings.TrimSpace(string(v)) == "0" && (os.Geteuid() != 0 || strings.Contains(file, "max_user")) {
			return fmt.Errorf("%w: user namespaces are disabled (%s is 0; enable with: %s)", runtime.ErrBackendUnavailable, file, hint)
		}
	}
	return nil
}

// Mapping reports the id mapping environments get on this host (for doctor).
func (b *Backend) Mapping() (sandbox.IDMapping, error) {
	h := b.opts.Host()
	return sandbox.IDMaps(sandbox.IDSource{User: h.User, UID: h.UID, GID: h.GID})
}

// inputs are the sandbox inputs shared by builds and sessions of spec.
func (b *Backend) inputs(spec *runtime.Spec, lower, upper, work string) (sandbox.Inputs, error) {
	h := b.opts.Host()
	ids, err := sandbox.IDMaps(sandbox.IDSource{User: h.User, UID: h.UID, GID: h.GID})
	if err != nil {
		return sandbox.Inputs{}, err
	}
	hosts, hostname, err := provision.HostFiles(spec.EnvDir, spec.EnvID)
	if err != nil {
		return sandbox.Inputs{}, err
	}
	return sandbox.Inputs{
		HostsFile:    hosts,
		HostnameFile: hostname,
		EnvID:        spec.EnvID,
		Name:         spec.Name,
		Manifest:     spec.Manifest,
		ManifestDir:  spec.ManifestDir,
		Lower:        []string{lower},
		Upper:        upper,
		Work:         work,
		ReadOnly:     spec.ReadOnly,
		Offline:      spec.Offline,
		Host:         h,
		UIDMap:       ids.UID,
		GIDMap:       ids.GID,
	}, nil
}

// buildRunner runs package manager commands in a build sandbox over the environment.
type buildRunner struct {
	in   sandbox.Inputs
	opts Options
}

func (r buildRunner) Run(ctx context.Context, argv []string, o pkgmgr.RunOptions) (pkgmgr.Result, error) {
	in := r.in
	in.Build = true
	in.Argv = argv
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
	code, err := Run(ctx, plan, stdio, r.opts)
	res := pkgmgr.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}
	if err != nil && !errors.Is(err, runtime.ErrExecFailed) {
		return res, err
	}
	return res, nil
}

// Resolve implements runtime.Resolver: the image digest, and the exact version of every
// package as the image's own package manager would install it (asked in a throwaway
// overlay that is removed afterwards).
func (b *Backend) Resolve(ctx context.Context, spec *runtime.Spec) (schema.Resolution, error) {
	img, err := provision.Image(ctx, spec, b.opts.Images(spec.StoreRoot))
	if err != nil {
		return schema.Resolution{}, err
	}
	res, err := provision.Resolve(ctx, spec, img, b.buildSandbox(spec), b.log)
	return res, b.mappingHint(err)
}

// Build implements runtime.Builder: the image, the environment's layers, and the exact
// package versions installed into the upper layer.
func (b *Backend) Build(ctx context.Context, spec *runtime.Spec) error {
	img, err := provision.Image(ctx, spec, b.opts.Images(spec.StoreRoot))
	if err != nil {
		return err
	}
	err = provision.Build(ctx, spec, img, b.buildSandbox(spec), "", b.log, filepath.Join(spec.EnvDir, sessionsDir))
	return b.mappingHint(err)
}

// mappingHint says why a package manager failed when the cause is likely the single id
// mapping (dpkg's "error setting ownership", chgrp's "Invalid argument", apt's
// "setgroups 65534 failed"), and how to get a full one.
func (b *Backend) mappingHint(err error) error {
	var ce *pkgmgr.CommandError
	var pe *pkgmgr.PackageError
	if err == nil || (!errors.As(err, &ce) && !errors.As(err, &pe)) {
		return err
	}
	h := b.opts.Host()
	ids, ierr := sandbox.IDMaps(sandbox.IDSource{User: h.User, UID: h.UID, GID: h.GID})
	if ierr != nil || ids.Full {
		return err
	}
	return fmt.Errorf("%w\nhint: the environment maps only your own id (%s), so packages that create users or change file ownership cannot install; %s", err, ids.Reason, ids.Fix)
}

// buildSandbox runs package-manager commands through the launcher, in a writable build
// sandbox over the given layers.
func (b *Backend) buildSandbox(spec *runtime.Spec) provision.Sandbox {
	return func(_ context.Context, lower, upper, work string) (pkgmgr.Runner, error) {
		in, err := b.inputs(spec, lower, upper, work)
		if err != nil {
			return nil, err
		}
		in.ReadOnly = false
		return buildRunner{in: in, opts: b.opts.Run}, nil
	}
}

// Destroy ends the environment's keeper and sessions and makes its tree deletable (the kernel
// leaves overlay work directories without permissions). Nothing is mounted on the host,
// so there is nothing to unmount.
func (b *Backend) Destroy(ctx context.Context, spec *runtime.Spec) error {
	if err := b.Stop(ctx, spec, 0); err != nil && !errors.Is(err, runtime.ErrNotRunning) {
		return err
	}
	work := filepath.Join(spec.EnvDir, workDir)
	if _, err := os.Stat(work); err == nil {
		return RemoveWork(work, b.log)
	}
	return nil
}

// Exec implements runtime.Runner.
func (b *Backend) Exec(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string) (int, error) {
	if len(argv) == 0 {
		return 125, fmt.Errorf("%w: exec needs a command", runtime.ErrExecFailed)
	}
	return b.session(ctx, spec, stdio, argv, false)
}

// Enter implements runtime.Runner: a terminal session (when stdin is a terminal) running
// argv, or a login shell in the home directory.
func (b *Backend) Enter(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string) (int, error) {
	tty := false
	if f, ok := stdio.Stdin.(*os.File); ok {
		_, err := getTermios(f.Fd())
		tty = err == nil
	}
	return b.session(ctx, spec, stdio, argv, tty)
}

func (b *Backend) session(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string, tty bool) (int, error) {
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
	if len(in.UIDMap) == 1 && in.UIDMap[0].Size == 1 {
		in.AptConf = filepath.Join(spec.EnvDir, aptConfFile)
		if old, err := os.ReadFile(in.AptConf); err != nil || string(old) != sandbox.AptSingleIDConf {
			if err := replaceFile(in.AptConf, []byte(sandbox.AptSingleIDConf), 0o644); err != nil {
				return 125, err
			}
		}
	}
	var rec *sandbox.RecordingFS
	// A plan with the caller's own additions is this session's alone: the fast path
	// would run it for the next plain exec.
	if spec.FastExec != nil && !tty && len(spec.Env) == 0 && !spec.SSHAgent {
		rec = &sandbox.RecordingFS{FS: in.Host.FS}
		in.Host.FS = rec
	}
	plan, err := sandbox.Compute(in)
	if err != nil {
		return 125, err
	}
	if rec != nil {
		facts := fastFacts{fs: rec, env: in.Host.Env}
		// The session starts in the caller's directory when the sandbox sees it
		// (sandbox.sessionDir), so the plan holds for this directory only.
		facts.cwd = in.Host.Cwd
		if err := writeFastExec(spec, plan, facts, b.opts.Run); err != nil {
			b.log.Debug("exec fast path plan not written", "err", err)
		}
	}
	sessions := filepath.Join(spec.EnvDir, sessionsDir)
	if err := os.MkdirAll(sessions, 0o755); err != nil {
		return 125, err
	}
	opts := b.opts.Run
	var record string
	opts.Started = func(pid int) {
		start, err := startTime(pid)
		if err != nil {
			b.log.Warn("session record", "err", err)
			return
		}
		record = filepath.Join(sessions, strconv.Itoa(pid))
		if err := replaceFile(record, fmt.Appendf(nil, "%d %d\n", pid, start), 0o644); err != nil {
			b.log.Warn("session record", "err", err)
			record = ""
		}
	}
	code, err := Run(ctx, plan, stdio, opts)
	if record != "" {
		_ = os.Remove(record)
	}
	return code, err
}

// replaceFile replaces path with data through a dot-named temp file and a rename, so a
// reader never sees a half-written file: liveSessions would drop a half-written record
// as corrupt, losing a live session. Dot names are never records.
func replaceFile(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// startTime is field 22 of /proc/<pid>/stat: the process start time in clock ticks since
// boot, which tells a live session from a recycled pid.
func startTime(pid int) (uint64, error) {
	_, start, err := procStat(pid)
	return start, err
}

// procStat returns the state (field 3, "Z" for a zombie) and the start time (field 22)
// of /proc/<pid>/stat.
func procStat(pid int) (string, uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	return f[0], start, err
}

// liveSessions returns the pids of the environment's live sessions, deleting records of
// dead ones.
func (b *Backend) liveSessions(spec *runtime.Spec) ([]int, error) {
	dir := filepath.Join(spec.EnvDir, sessionsDir)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue // a record being written (replaceFile)
		}
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var pid int
		var start uint64
		if _, err := fmt.Sscanf(string(data), "%d %d", &pid, &start); err != nil || pid <= 0 {
			b.log.Warn("corrupt session record", "file", p)
			_ = os.Remove(p)
			continue
		}
		if now, err := startTime(pid); err != nil || now != start {
			_ = os.Remove(p) // gone, or the pid now belongs to another process
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// Status implements runtime.Runner.
func (b *Backend) Status(ctx context.Context, spec *runtime.Spec) (runtime.Status, error) {
	pids, err := b.liveSessions(spec)
	if err != nil {
		return runtime.Status{}, err
	}
	return runtime.Status{EnvID: spec.EnvID, Running: len(pids) > 0, PIDs: pids}, nil
}

// Stop implements runtime.Runner: it ends the environment's keeper, then sends SIGTERM
// to every session, SIGKILL to those still alive after grace. A session's host process is its namespace helper, which forwards SIGTERM
// to the command; SIGKILL takes the whole PID namespace down.
func (b *Backend) Stop(ctx context.Context, spec *runtime.Spec, grace time.Duration) error {
	// The keeper first, so no new session joins it meanwhile (it is no session itself).
	if err := ReleaseKeeper(ctx, spec.EnvDir); err != nil {
		return err
	}
	pids, err := b.liveSessions(spec)
	if err != nil {
		return err
	}
	if len(pids) == 0 {
		return fmt.Errorf("%w: %s", runtime.ErrNotRunning, spec.EnvID.Short())
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("send SIGTERM to session %d: %w", pid, err)
		}
	}
	deadline := time.Now().Add(grace)
	for {
		live, err := b.liveSessions(spec)
		if err != nil {
			return err
		}
		if len(live) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			for _, pid := range live {
				b.log.Info("session did not exit after SIGTERM, sending SIGKILL", "pid", pid)
				if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
					return fmt.Errorf("send SIGKILL to session %d: %w", pid, err)
				}
			}
			return b.waitGone(ctx, spec)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitGone waits (briefly) until the killed sessions' records are gone.
func (b *Backend) waitGone(ctx context.Context, spec *runtime.Spec) error {
	for i := 0; i < 250; i++ {
		live, err := b.liveSessions(spec)
		if err != nil || len(live) == 0 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("%w: sessions of %s survived SIGKILL", runtime.ErrExecFailed, spec.EnvID.Short())
}
