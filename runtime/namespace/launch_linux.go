package namespace

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/provision"
	"github.com/karapace/karapace/runtime/sandbox"
)

// The launcher protocol. P is the Go parent (Run), S0 the process it starts
// (/proc/self/exe __karapace_nsinit, caught by the C constructor in nsinit.c before the
// Go runtime exists), I the init of the new PID namespace, C the command. The sync
// channel is a socket pair; S0 gets its end as fd 3 (close-on-exec).
//
//	P                         S0                          I (pid 1)              C
//	| start S0 --------------> |                           |                      |
//	| -- u32 want, u32 len,  ->| unshare(NEWUSER)          |                      |
//	|    flat plan             | [SELFMAP: write own maps] |                      |
//	|                          | read the plan             |                      |
//	|                          | unshare(NEWNS|NEWUTS|     |                      |
//	|                          |   NEWIPC[|NEWNET])        |                      |
//	|                          | fork the holder (H)       |                      |
//	|  [PARENT only:]          |                           |                      |
//	| <-------- USERNS msg ----|                           |                      |
//	| write uid/gid maps       |                           |                      |
//	| (or newuidmap), cgroup   |                           |                      |
//	| -- u32 go -------------->|                           |                      |
//	|                          | unshare(NEWPID)           |                      |
//	|                          | fork -------------------> | guard, hostname,     |
//	|                          | relay signals, exit with  | overlay, mounts,     |
//	|                          | I's status                | [pty: PTY msg + fd ->P,
//	|                          |                           |  P sizes it, u32 ack]
//	|                          |                           | lo up, pivot_root,   |
//	|                          |                           | no_new_privs, fork ->| chdir, execve
//	| <----------------------- ERROR msg (stage, errno, text) from S0, I or C ----|
//	| EOF on the socket: every holder exec'd or exited (fd 3 is close-on-exec)    |
//	| wait(S0) = C's status: exit n -> n, signal n -> 128+n, launcher error -> 125
//
// Messages are 512 bytes: u32 type, i32 errno, 32-byte stage, 472-byte text.
//
// H, the holder, keeps the namespaces (and the session slot's lock, fd 4) until S0 and I
// are gone, so the mount namespace's teardown (overlay unmount, upper sync) happens after
// the status is reported.
const (
	msgSize   = 512
	msgError  = 1
	msgUserns = 2
	msgPTY    = 3
)

// Error classes of the launcher (besides runtime's).
var (
	// ErrSetup is a failure inside the namespace before the command started (a mount,
	// the overlay, pivot_root); the error text names the stage.
	ErrSetup = errors.New("sandbox setup failed")
	// ErrGuard is a refusal of the mount guard: the code was not in new namespaces.
	ErrGuard = errors.New("mount guard refused")
)

// Options tune Run.
type Options struct {
	Logger *slog.Logger
	// Overlay selects the root driver: "" or "auto" tries kernel overlayfs (with
	// userxattr, then without) and falls back to fuse-overlayfs; "kernel" or "fuse"
	// force one.
	Overlay string
	// Grace is the time between SIGTERM and SIGKILL when ctx is cancelled (default 5s).
	Grace time.Duration
	// Started, when set, is called with the host PID of the session's first process
	// once it exists; the PID stays valid until Run returns.
	Started func(pid int)
	// Executable is the binary re-executed as the namespace helper (default
	// /proc/self/exe). It must import this package.
	Executable string

	// Test seams: leave out the user or the mount namespace, to prove the guard.
	testSkipUserNS, testSkipMntNS bool
}

// SetupError is a failure reported by the C half: the stage (userns, namespaces,
// overlay, mount, pivot, pty, exec, ...), the errno and a message. It matches ErrSetup,
// ErrGuard or runtime.ErrExecFailed, and its errno, with errors.Is.
type SetupError struct {
	Stage string
	Errno syscall.Errno
	Text  string
}

// Error is the stage and the text; the C half puts the errno's description into the
// text itself, so the native exec fast path prints the same message.
func (e *SetupError) Error() string {
	return fmt.Sprintf("%s: %s", e.Stage, e.Text)
}

func (e *SetupError) Unwrap() []error {
	var cls error = ErrSetup
	switch {
	case strings.HasPrefix(e.Text, "guard:"):
		cls = ErrGuard
	case e.Stage == "exec":
		cls = runtime.ErrExecFailed
	}
	if e.Errno != 0 {
		return []error{cls, e.Errno}
	}
	return []error{cls}
}

// Run runs plan.Argv in a new sandbox and returns its exit status: the command's exit
// code, 128+n when a signal n killed it, 125 when the launcher failed (with a non-nil
// error), 126/127 when the command could not be executed (with an error).
//
// Cancelling ctx sends SIGTERM, then SIGKILL after opts.Grace. SIGINT and SIGTERM
// received meanwhile are forwarded.
func Run(ctx context.Context, plan *sandbox.Plan, stdio runtime.Stdio, opts Options) (int, error) {
	if len(plan.Argv) == 0 {
		return 125, fmt.Errorf("%w: empty argv", runtime.ErrExecFailed)
	}
	if err := checkStrings("argv", plan.Argv); err != nil {
		return 125, err
	}
	if err := checkStrings("env", plan.Env); err != nil {
		return 125, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := opts.Grace
	if grace <= 0 {
		grace = 5 * time.Second
	}

	// Per-session scratch space beside the upper layer: the overlay work directory
	// (one upper may serve several live sessions, one work dir may not) and the
	// mount point of the merged root, which exists only inside the namespace. Slots are
	// reused from one session to the next (overlayfs cleans its work directory when it
	// mounts), so a session creates and deletes nothing on disk.
	if plan.Root.Work == "" {
		return 125, fmt.Errorf("%w: plan has no work directory", ErrSetup)
	}
	slot, slotLock, err := acquireSlot(plan.Root.Work)
	if err != nil {
		return 125, err
	}
	defer slotLock.Close()
	work, merged := filepath.Join(slot, "work"), filepath.Join(slot, "merged")

	fp, err := flatten(plan, work, merged, opts)
	if err != nil {
		return 125, fmt.Errorf("%w: %w", ErrSetup, err)
	}

	cg, err := newCgroup("s-"+strconv.Itoa(os.Getpid())+"-"+filepath.Base(slot)+"-"+randomHex(4), plan.Limits)
	if err != nil {
		return 125, err
	}
	defer func() {
		if err := cg.remove(); err != nil {
			log.Warn("cgroup cleanup", "err", err)
		}
	}()

	parentEnd, childEnd, err := syncSocket()
	if err != nil {
		return 125, err
	}
	defer parentEnd.Close()
	exe := opts.executable()
	cmd := &exec.Cmd{
		Path:       exe,
		Args:       []string{"karapace-nsinit", initArg},
		Env:        []string{},
		ExtraFiles: []*os.File{childEnd, slotLock},
		// If Run's process dies, so does stage 0, then PID 1, then the namespace.
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL},
	}
	if !plan.TTY {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	}
	// Forwarding starts before the child does, so no signal falls between.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if err := cmd.Start(); err != nil {
		childEnd.Close()
		return 125, fmt.Errorf("%w: start %s: %w", runtime.ErrExecFailed, exe, err)
	}
	childEnd.Close()
	pid := cmd.Process.Pid

	code, err := handshake(ctx, cmd, parentEnd, plan, fp, cg)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return code, err
	}
	if opts.Started != nil {
		opts.Started(pid)
	}

	// Read reports until EOF; a PTY report starts the terminal relay.
	type report struct {
		err error
		pty *os.File
	}
	reportc := make(chan report, 4)
	reports := reportc
	go func() {
		defer close(reportc)
		for {
			m, fd, err := readMsg(parentEnd)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					reportc <- report{err: fmt.Errorf("sync socket: %w", err)}
				}
				return
			}
			switch m.typ {
			case msgError:
				reportc <- report{err: m.err()}
			case msgPTY:
				if fd >= 0 {
					reportc <- report{pty: os.NewFile(uintptr(fd), "pty-master")}
				}
			}
		}
	}()

	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()

	var (
		setupErr  error
		term      *terminal
		killTimer <-chan time.Time
		done      = ctx.Done()
		waitErr   error
	)
loop:
	for {
		select {
		case r, ok := <-reports:
			if !ok {
				reports = nil
				continue
			}
			if r.err != nil && setupErr == nil {
				setupErr = r.err
			}
			if r.pty != nil {
				term = startTerminal(r.pty, stdio, log)
				// Release I: the pty has its size now.
				if err := binary.Write(parentEnd, binary.NativeEndian, uint32(1)); err != nil && setupErr == nil {
					setupErr = fmt.Errorf("%w: pty acknowledgement: %w", ErrSetup, err)
				}
			}
		case s := <-sigs:
			// The sandbox runs in a session of its own (no controlling terminal, so
			// nothing inside can push input into the user's): the terminal's ^C
			// reaches S0, which ignores signals the kernel sends, and us; we pass it on.
			_ = cmd.Process.Signal(s)
		case <-done:
			done = nil
			_ = cmd.Process.Signal(syscall.SIGTERM)
			t := time.NewTimer(grace)
			defer t.Stop()
			killTimer = t.C
		case <-killTimer:
			killTimer = nil
			_ = cmd.Process.Kill()
		case waitErr = <-waited:
			break loop
		}
	}
	// The socket reaches EOF once S0 and I are gone; drain what is left.
	for r := range reportc {
		if r.err != nil && setupErr == nil {
			setupErr = r.err
		}
		if r.pty != nil {
			r.pty.Close()
		}
	}
	if term != nil {
		term.finish()
	}
	code = exitStatus(cmd.ProcessState, waitErr)
	if setupErr != nil {
		return code, setupErr
	}
	if code == 125 && waitErr != nil {
		return code, fmt.Errorf("%w: namespace helper: %w", ErrSetup, waitErr)
	}
	return code, nil
}

// Bits of the first word S0 reads.
const (
	wantUserNS  = 1 // create a user namespace
	wantSelfMap = 2 // S0 maps 0 to its own ids itself: no round trip
	wantParent  = 4 // S0 waits for the parent (id maps, cgroup) after reading the plan
)

// handshake runs the first half of the protocol: user namespace, id maps, cgroup, plan.
// In the common case (a single self-mapping, no cgroup) S0 needs nothing more from the
// parent and the whole exchange is one write.
func handshake(ctx context.Context, cmd *exec.Cmd, sock *os.File, plan *sandbox.Plan, fp *flatPlan, cg *cgroup) (int, error) {
	pid := cmd.Process.Pid
	want := uint32(0)
	if !fp.skipUserNS {
		want |= wantUserNS
	}
	if !fp.skipUserNS && cg == nil && selfMapping(plan.UIDMap, os.Geteuid()) && selfMapping(plan.GIDMap, os.Getegid()) {
		want |= wantSelfMap
	} else {
		want |= wantParent
	}
	body := fp.encode()
	buf := make([]byte, 8, 8+len(body))
	binary.NativeEndian.PutUint32(buf[0:4], want)
	binary.NativeEndian.PutUint32(buf[4:8], uint32(len(body)))
	if _, err := sock.Write(append(buf, body...)); err != nil {
		return 125, fmt.Errorf("%w: send plan: %w", ErrSetup, err)
	}
	if want&wantParent == 0 {
		return 0, nil
	}
	m, _, err := readMsg(sock)
	if err != nil {
		return 125, fmt.Errorf("%w: namespace helper did not start (is %s built with this package?): %w", ErrSetup, cmd.Path, err)
	}
	if m.typ == msgError {
		return 125, m.err()
	}
	if !fp.skipUserNS {
		if err := writeIDMaps(ctx, pid, plan.UIDMap, plan.GIDMap); err != nil {
			return 125, fmt.Errorf("%w: id maps: %w", ErrSetup, err)
		}
	}
	if err := cg.join(pid); err != nil {
		return 125, err
	}
	if err := binary.Write(sock, binary.NativeEndian, uint32(1)); err != nil {
		return 125, fmt.Errorf("%w: release namespace helper: %w", ErrSetup, err)
	}
	return 0, nil
}

// selfMapping reports whether m maps exactly 0 to id and nothing else.
func selfMapping(m []sandbox.IDMap, id int) bool {
	return len(m) == 1 && m[0].ContainerID == 0 && m[0].Size == 1 && int(m[0].HostID) == id
}

// flatten converts the plan for the C half.
func flatten(plan *sandbox.Plan, work, merged string, opts Options) (*flatPlan, error) {
	ovl, err := overlayOptions(plan.Root, work)
	if err != nil {
		return nil, err
	}
	userns, err := nsInode("user")
	if err != nil {
		return nil, err
	}
	mntns, err := nsInode("mnt")
	if err != nil {
		return nil, err
	}
	fp := &flatPlan{
		parentUserNS: userns,
		parentMntNS:  mntns,
		tty:          plan.TTY,
		netns:        plan.NetworkIsolation,
		readonly:     plan.Root.ReadOnly,
		skipUserNS:   opts.testSkipUserNS,
		skipMntNS:    opts.testSkipMntNS,
		hostname:     plan.Hostname,
		overlayOpts:  ovl,
		merged:       merged,
		setupLock:    filepath.Join(plan.Root.Work, ".setup.lock"),
		env:          plan.Env,
		argv:         plan.Argv,
		dir:          plan.Dir,
	}
	switch opts.Overlay {
	case "", "auto":
		fp.overlayMode = "auto"
	case "kernel", "fuse":
		fp.overlayMode = opts.Overlay
	default:
		return nil, fmt.Errorf("unknown overlay driver %q", opts.Overlay)
	}
	if p, err := exec.LookPath("fuse-overlayfs"); err == nil {
		fp.fusePath, _ = filepath.Abs(p)
	}
	if fp.dir == "" {
		fp.dir = "/"
	}
	if len(fp.hostname) > 64 {
		return nil, fmt.Errorf("hostname %q is longer than 64 bytes", fp.hostname)
	}
	if err := flattenSecurity(fp, plan.Security); err != nil {
		return nil, err
	}
	for _, m := range plan.Mounts {
		f, err := flattenMount(m)
		if err != nil {
			return nil, err
		}
		fp.mounts = append(fp.mounts, f)
	}
	return fp, nil
}

func nsInode(kind string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat("/proc/self/ns/"+kind, &st); err != nil {
		return 0, fmt.Errorf("identify own %s namespace: %w", kind, err)
	}
	return st.Ino, nil
}

type msg struct {
	typ   uint32
	errno int32
	stage string
	text  string
}

func (m msg) err() error {
	return &SetupError{Stage: m.stage, Errno: syscall.Errno(m.errno), Text: m.text}
}

// readMsg reads one 512-byte message, with the descriptor passed along it (or -1).
func readMsg(f *os.File) (msg, int, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		return msg{}, -1, err
	}
	buf := make([]byte, msgSize)
	oob := make([]byte, syscall.CmsgSpace(4))
	got, fd := 0, -1
	var rerr error
	for got < msgSize {
		var n, oobn int
		cerr := raw.Read(func(s uintptr) bool {
			n, oobn, _, _, rerr = syscall.Recvmsg(int(s), buf[got:], oob, syscall.MSG_CMSG_CLOEXEC)
			return rerr != syscall.EAGAIN
		})
		if cerr != nil {
			return msg{}, -1, cerr
		}
		if rerr != nil {
			if rerr == syscall.EINTR {
				continue
			}
			return msg{}, -1, rerr
		}
		if oobn > 0 {
			if cms, err := syscall.ParseSocketControlMessage(oob[:oobn]); err == nil {
				for _, cm := range cms {
					if fds, err := syscall.ParseUnixRights(&cm); err == nil {
						for _, x := range fds {
							if fd < 0 {
								fd = x
							} else {
								syscall.Close(x)
							}
						}
					}
				}
			}
		}
		if n == 0 {
			if fd >= 0 {
				syscall.Close(fd)
			}
			if got == 0 {
				return msg{}, -1, io.EOF
			}
			return msg{}, -1, io.ErrUnexpectedEOF
		}
		got += n
	}
	cstr := func(b []byte) string {
		if i := strings.IndexByte(string(b), 0); i >= 0 {
			b = b[:i]
		}
		return string(b)
	}
	return msg{
		typ:   binary.NativeEndian.Uint32(buf[0:4]),
		errno: int32(binary.NativeEndian.Uint32(buf[4:8])),
		stage: cstr(buf[8:40]),
		text:  cstr(buf[40:]),
	}, fd, nil
}

func exitStatus(ps *os.ProcessState, waitErr error) int {
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

// syncSocket is the socket pair of the launcher protocol: the parent's end, and the
// child's (fd 3 in the child, close-on-exec there).
func syncSocket() (parent, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("sync socket: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "karapace-sync"), os.NewFile(uintptr(fds[1]), "karapace-sync-child"), nil
}

// executable is the binary re-executed as the namespace helper.
func (o Options) executable() string {
	if o.Executable != "" {
		return o.Executable
	}
	return "/proc/self/exe"
}

// maxSlots bounds the live sessions of one environment.
const maxSlots = 256

// acquireSlot locks the first free session slot <work>/s<N> (an flock on s<N>.lock,
// held as long as the returned file, or a copy of it, is open) and makes sure its work
// and merged directories exist. The sandbox keeps a copy until its overlay is gone.
func acquireSlot(work string) (string, *os.File, error) {
	if err := os.MkdirAll(work, 0o700); err != nil {
		return "", nil, fmt.Errorf("create work directory: %w", err)
	}
	for i := 0; i < maxSlots; i++ {
		slot := filepath.Join(work, "s"+strconv.Itoa(i))
		f, err := os.OpenFile(slot+".lock", os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("session slot: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				continue
			}
			return "", nil, fmt.Errorf("lock session slot: %w", err)
		}
		for _, d := range []string{slot, filepath.Join(slot, "work"), filepath.Join(slot, "merged")} {
			if err := os.Mkdir(d, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
				f.Close()
				return "", nil, fmt.Errorf("create session slot: %w", err)
			}
		}
		return slot, f, nil
	}
	return "", nil, fmt.Errorf("%w: more than %d live sessions in %s", ErrSetup, maxSlots, work)
}

// RemoveWork deletes an environment's work directory (the session slots): it waits for
// every slot's lock, so no live or dying session still uses it, then makes the
// overlay's permission-less work directories deletable and removes the tree.
func RemoveWork(work string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	locks, _ := filepath.Glob(filepath.Join(work, "s*.lock"))
	for _, l := range locks {
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		// A dying session's holder releases its slot within moments; a live session
		// may hold it for hours, so wait boundedly and remove anyway.
		for i := 0; ; i++ {
			err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
			if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) || i == 500 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			log.Warn("session slot still in use", "lock", l, "err", err)
		}
		f.Close()
	}
	provision.RemoveScratch(work, log)
	if _, err := os.Stat(work); err == nil {
		return fmt.Errorf("work directory %s could not be removed", work)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
