package namespace

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

var testEnvID = schema.SumString("karapace namespace tests")

// requireNamespaces fails under CI=true, and skips loudly otherwise, when this host
// cannot create user namespaces.
func requireNamespaces(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPING: namespace end-to-end test in -short mode")
	}
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	if err == nil && strings.TrimSpace(string(b)) == "0" {
		missing(t, "user namespaces are disabled (user.max_user_namespaces = 0)")
	}
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): %s", why)
	}
	t.Skipf("SKIPPING: %s (this test fails under CI=true)", why)
}

// testEnv is one environment on disk: the busybox rootfs as lower, upper and work in a
// temporary directory.
type testEnv struct {
	lower, upper, work string
}

func newTestEnv(t testing.TB) testEnv {
	t.Helper()
	requireNamespaces(t)
	lower := testrootfs.Busybox(t)
	dir := t.TempDir()
	if os.Geteuid() != 0 {
		// The shared fixture belongs to root, who is unmapped in our user namespace,
		// so root inside could not write to its directories; an image extracted by
		// the user belongs to the user. Give the session such a copy.
		lower = copyTree(t, lower, filepath.Join(dir, "lower"))
	}
	e := testEnv{lower: lower, upper: filepath.Join(dir, "upper"), work: filepath.Join(dir, "work")}
	for _, d := range []string{e.upper, e.work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		checkNoMounts(t, dir)
		if err := RemoveWork(e.work, nil); err != nil {
			t.Error(err)
		}
	})
	return e
}

// plan computes a plan the way the backend does (sandbox.Compute, build mode: no host
// home or variables), then sets argv.
func (e testEnv) plan(t testing.TB, argv ...string) *sandbox.Plan {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	ids, err := sandbox.IDMaps(sandbox.IDSource{User: u.Username, UID: uid, GID: gid})
	if err != nil {
		t.Fatal(err)
	}
	p, err := sandbox.Compute(sandbox.Inputs{
		EnvID:  testEnvID,
		Lower:  []string{e.lower},
		Upper:  e.upper,
		Work:   e.work,
		Build:  true,
		Argv:   argv,
		Host:   sandbox.Host{Env: map[string]string{}, UID: uid, GID: gid, User: u.Username, Home: "/root", FS: sandbox.OSFS{}},
		UIDMap: ids.UID,
		GIDMap: ids.GID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type result struct {
	code           int
	err            error
	stdout, stderr string
}

func run(t *testing.T, p *sandbox.Plan, stdin string, opts Options) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	code, err := Run(ctx, p, runtime.Stdio{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb}, opts)
	return result{code, err, out.String(), errb.String()}
}

func mustRun(t *testing.T, p *sandbox.Plan, stdin string) result {
	t.Helper()
	r := run(t, p, stdin, Options{})
	if r.err != nil {
		t.Fatalf("Run(%q): %v (stderr %q)", p.Argv, r.err, r.stderr)
	}
	return r
}

// checkNoMounts fails if any mount of the host's namespace lies under dir.
func checkNoMounts(t testing.TB, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), dir) {
		t.Errorf("mounts left under %s:\n%s", dir, b)
	}
}

// checkNoChildren fails if a process started by this test binary is still alive.
func checkNoChildren(t *testing.T) {
	t.Helper()
	self := strconv.Itoa(os.Getpid())
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == self {
			cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
			if bytes.Contains(cmd, []byte(initArg)) {
				t.Errorf("namespace helper %s still alive after Run returned", e.Name())
			}
		}
	}
}

func TestRunOutputAndExitCodes(t *testing.T) {
	e := newTestEnv(t)
	cases := []struct {
		name string
		argv []string
		code int
		out  string
	}{
		{"echo", []string{"echo", "hello"}, 0, "hello\n"},
		{"exit7", []string{"sh", "-c", "echo partial; exit 7"}, 7, "partial\n"},
		{"sigkill", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"sigterm", []string{"sh", "-c", "kill -TERM $$"}, 128 + 15, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := mustRun(t, e.plan(t, c.argv...), "")
			if r.code != c.code || r.stdout != c.out {
				t.Errorf("got code %d stdout %q, want %d %q (stderr %q)", r.code, r.stdout, c.code, c.out, r.stderr)
			}
		})
	}
	checkNoChildren(t)
}

func TestRunStdin(t *testing.T) {
	e := newTestEnv(t)
	r := mustRun(t, e.plan(t, "sh", "-c", "tr a-z A-Z; echo err >&2"), "passed through\n")
	if r.stdout != "PASSED THROUGH\n" || r.stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
}

func TestRunCommandNotFound(t *testing.T) {
	e := newTestEnv(t)
	r := run(t, e.plan(t, "no-such-command"), "", Options{})
	if r.code != 127 || !errors.Is(r.err, runtime.ErrExecFailed) || !errors.Is(r.err, syscall.ENOENT) {
		t.Fatalf("code %d err %v, want 127 and ErrExecFailed/ENOENT", r.code, r.err)
	}
}

func TestRunSignals(t *testing.T) {
	e := newTestEnv(t)
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p := e.plan(t, "sh", "-c", "echo started; exec sleep 30")
		var out bytes.Buffer
		pr, pw, _ := os.Pipe()
		defer pr.Close()
		go func() {
			buf := make([]byte, 8)
			_, _ = pr.Read(buf)
			cancel()
		}()
		start := time.Now()
		code, err := Run(ctx, p, runtime.Stdio{Stdout: pw, Stderr: &out}, Options{Grace: 10 * time.Second})
		pw.Close()
		if err != nil || code != 128+int(syscall.SIGTERM) {
			t.Fatalf("code %d err %v, want 143", code, err)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("SIGTERM took %v: it was not forwarded", d)
		}
	})
	t.Run("forward", func(t *testing.T) {
		// A SIGTERM sent to the session's host process reaches the command.
		p := e.plan(t, "sh", "-c", "trap 'echo got TERM; exit 3' TERM; echo ready; while :; do sleep 0.05; done")
		pr, pw, _ := os.Pipe()
		defer pr.Close()
		pidc := make(chan int, 1)
		var got bytes.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 64)
			pid := <-pidc
			n, _ := pr.Read(buf) // "ready"
			got.Write(buf[:n])
			_ = syscall.Kill(pid, syscall.SIGTERM)
			for {
				n, err := pr.Read(buf)
				got.Write(buf[:n])
				if err != nil {
					return
				}
			}
		}()
		code, err := Run(context.Background(), p, runtime.Stdio{Stdout: pw, Stderr: pw}, Options{Started: func(pid int) { pidc <- pid }})
		pw.Close()
		<-done
		if err != nil || code != 3 || !strings.Contains(got.String(), "got TERM") {
			t.Fatalf("code %d err %v output %q, want 3 and the trap's output", code, err, got.String())
		}
	})
	checkNoChildren(t)
}

func TestRunIdentity(t *testing.T) {
	e := newTestEnv(t)
	p := e.plan(t, "sh", "-c", "hostname; echo $$; tr '\\0' ' ' </proc/1/cmdline; echo; id -u; wc -l </proc/self/uid_map")
	r := mustRun(t, p, "")
	lines := strings.Split(r.stdout, "\n")
	if len(lines) < 5 {
		t.Fatalf("output %q", r.stdout)
	}
	if want := "karapace-" + testEnvID.Short(); lines[0] != want {
		t.Errorf("hostname %q, want %q", lines[0], want)
	}
	// The init is ours: PID 1 is the launcher, so the command is PID 2.
	if lines[1] != "2" {
		t.Errorf("command pid %q, want 2", lines[1])
	}
	if !strings.Contains(lines[2], initArg) {
		t.Errorf("/proc/1/cmdline %q is not the launcher", lines[2])
	}
	if lines[3] != "0" {
		t.Errorf("uid inside %q, want 0", lines[3])
	}
	// The whole mapping is in place (a subordinate range, through newuidmap for an
	// unprivileged caller, when the host grants one).
	if lines[4] != strconv.Itoa(len(p.UIDMap)) {
		t.Errorf("uid_map has %s lines, want %d (%v)", lines[4], len(p.UIDMap), p.UIDMap)
	}
	t.Logf("uid map: %v", p.UIDMap)
}

func TestRunDev(t *testing.T) {
	e := newTestEnv(t)
	r := mustRun(t, e.plan(t, "ls", "-a", "/dev"), "")
	got := strings.Fields(r.stdout)
	sort.Strings(got)
	// No tty: the session has no terminal of its own (the pty test sees it with one).
	want := []string{".", "..", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "urandom", "zero"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("/dev holds %v, want %v", got, want)
	}
	r = mustRun(t, e.plan(t, "sh", "-c", "echo x >/dev/null && head -c 4 /dev/zero | wc -c && head -c 4 /dev/urandom | wc -c"), "")
	if r.stdout != "4\n4\n" {
		t.Errorf("device use: %q", r.stdout)
	}
}

func TestRunNetworkIsolation(t *testing.T) {
	e := newTestEnv(t)
	p := e.plan(t, "sh", "-c", "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '; cat /sys/class/net/lo/flags")
	p.NetworkIsolation = true
	// Compute gives a fresh sysfs with a network namespace; the test plan was computed
	// without one, so recompute the base mounts the same way.
	p.Mounts[1] = sandbox.Mount{Type: "sysfs", Source: "sysfs", Destination: "/sys", Options: []string{"nosuid", "nodev", "noexec", "ro"}}
	r := mustRun(t, p, "")
	lines := strings.Fields(r.stdout)
	if len(lines) != 2 || lines[0] != "lo" {
		t.Fatalf("interfaces %q, want only lo", r.stdout)
	}
	flags, err := strconv.ParseUint(strings.TrimPrefix(lines[1], "0x"), 16, 32)
	if err != nil || flags&syscall.IFF_UP == 0 {
		t.Errorf("lo flags %q: not up", lines[1])
	}
}

func TestRunEnvIsExactlyPlanEnv(t *testing.T) {
	e := newTestEnv(t)
	p := e.plan(t, "env")
	p.Env = append(p.Env, "ONLY_THIS=1")
	t.Setenv("KARAPACE_LEAK_CHECK", "leaked")
	r := mustRun(t, p, "")
	got := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if strings.Join(got, "\n") != strings.Join(p.Env, "\n") {
		t.Errorf("env inside:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(p.Env, "\n"))
	}
}

func TestRunWritesLandInUpper(t *testing.T) {
	e := newTestEnv(t)
	mustRun(t, e.plan(t, "sh", "-c", "echo data >/etc/written && rm /etc/hostname"), "")
	b, err := os.ReadFile(filepath.Join(e.upper, "etc/written"))
	if err != nil || string(b) != "data\n" {
		t.Fatalf("upper/etc/written: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(e.lower, "etc/written")); err == nil {
		t.Fatal("write reached the lower layer")
	}
	if _, err := os.Stat(filepath.Join(e.lower, "etc/hostname")); err != nil {
		t.Fatal("delete reached the lower layer")
	}
	// The whiteout hides the file in the next session.
	r := mustRun(t, e.plan(t, "sh", "-c", "cat /etc/written; test -e /etc/hostname || echo gone"), "")
	if r.stdout != "data\ngone\n" {
		t.Errorf("second session sees %q", r.stdout)
	}
}

func TestRunReadOnlyRoot(t *testing.T) {
	e := newTestEnv(t)
	mustRun(t, e.plan(t, "sh", "-c", "echo before >/etc/frozen"), "")
	p := e.plan(t, "sh", "-c", "cat /etc/frozen; echo after >/etc/frozen || echo refused; touch /new || echo refused; echo tmp >/tmp/ok && cat /tmp/ok")
	p.Root.ReadOnly = true
	r := mustRun(t, p, "")
	if r.stdout != "before\nrefused\nrefused\ntmp\n" {
		t.Errorf("frozen root: stdout %q stderr %q", r.stdout, r.stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(e.upper, "etc/frozen")); string(b) != "before\n" {
		t.Errorf("upper changed under a frozen root: %q", b)
	}
}

func TestRunBindMounts(t *testing.T) {
	e := newTestEnv(t)
	host := t.TempDir()
	if err := os.Chmod(host, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "in-dir"), []byte("dir content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(host, "single.conf")
	if err := os.WriteFile(file, []byte("file content\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := e.plan(t, "sh", "-c", "cat /mnt/deep/data/in-dir /etc/bound.conf; echo new >/mnt/deep/data/from-inside; echo x >/etc/bound.conf || echo ro; test -f /etc/bound.conf && echo file")
	p.Mounts = append(p.Mounts,
		sandbox.Mount{Type: "bind", Source: host, Destination: "/mnt/deep/data", Options: []string{"rbind", "nosuid", "nodev"}},
		sandbox.Mount{Type: "bind", Source: file, Destination: "/etc/bound.conf", Options: []string{"bind", "ro"}, File: true},
		sandbox.Mount{Type: "bind", Source: filepath.Join(host, "absent"), Destination: "/opt/absent", Options: []string{"bind"}, Optional: true},
	)
	r := mustRun(t, p, "")
	if r.stdout != "dir content\nfile content\nro\nfile\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(host, "from-inside")); err != nil || string(b) != "new\n" {
		t.Errorf("write through the dir bind: %q %v", b, err)
	}
	if b, _ := os.ReadFile(file); string(b) != "file content\n" {
		t.Errorf("read-only file bind was written: %q", b)
	}
	// A mount point through a symlink in the image stays inside the root.
	// (/tmp is a tmpfs inside, so the target lives under /var/tmp on both sides.)
	target, err := os.MkdirTemp("/var/tmp", "karapace-escape-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(target)
	mustRun(t, e.plan(t, "sh", "-c", "mkdir -p "+target+" && ln -s /../../../.."+target+" /escape"), "")
	p = e.plan(t, "true")
	p.Mounts = append(p.Mounts, sandbox.Mount{Type: "tmpfs", Source: "tmpfs", Destination: "/escape/sub"})
	mustRun(t, p, "")
	if _, err := os.Stat(filepath.Join(target, "sub")); err == nil {
		t.Error("a mount point was created on the host through a symlink")
	}
	if _, err := os.Stat(filepath.Join(e.upper, target, "sub")); err != nil {
		t.Errorf("mount point not created inside the root: %v", err)
	}
}

func TestRunMountGuard(t *testing.T) {
	e := newTestEnv(t)
	// No new mount namespace: the guard must refuse before any mount. (Even without
	// the guard the kernel would refuse here, so the test cannot harm the host.)
	r := run(t, e.plan(t, "true"), "", Options{testSkipMntNS: true})
	if !errors.Is(r.err, ErrGuard) || r.code != 125 {
		t.Fatalf("without a mount namespace: code %d err %v, want the guard's refusal", r.code, r.err)
	}
	if os.Geteuid() == 0 {
		// No new user namespace, as real root: the identity uid_map must stop it. The
		// mount namespace is still new, so a broken guard could not touch the host.
		r = run(t, e.plan(t, "true"), "", Options{testSkipUserNS: true})
		if !errors.Is(r.err, ErrGuard) || r.code != 125 {
			t.Fatalf("without a user namespace: code %d err %v, want the guard's refusal", r.code, r.err)
		}
	}
}

func TestRunConcurrentSessions(t *testing.T) {
	e := newTestEnv(t)
	var wg sync.WaitGroup
	errs := make(chan string, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := "/concurrent-" + strconv.Itoa(i)
			r := run(t, e.plan(t, "sh", "-c", "echo "+name+" >"+name+"; sleep 0.3; cat "+name), "", Options{})
			if r.err != nil || r.stdout != name+"\n" {
				errs <- "session " + strconv.Itoa(i) + ": " + r.stdout + " " + r.stderr + " " + errString(r.err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(e.upper, "concurrent-"+strconv.Itoa(i))); err != nil {
			t.Error(err)
		}
	}
	// Three slots were used at once; they stay for reuse and hold nothing mounted.
	for i := range 3 {
		if _, err := os.Stat(filepath.Join(e.work, "s"+strconv.Itoa(i), "merged")); err != nil {
			t.Errorf("slot %d: %v", i, err)
		}
	}
	if _, err := os.Stat(filepath.Join(e.work, "s3")); err == nil {
		t.Error("more slots than concurrent sessions")
	}
}

// copyTree copies a directory tree of directories, regular files and symlinks.
func copyTree(t testing.TB, src, dst string) string {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode()&(os.ModePerm|os.ModeSticky))
		case d.Type()&os.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			return copyFile(p, target, info.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestRunLimits(t *testing.T) {
	e := newTestEnv(t)
	p := e.plan(t, "sh", "-c", "p=$(grep -E '^[0-9]+:memory:' /proc/self/cgroup | cut -d: -f3); cat /sys/fs/cgroup/memory$p/memory.limit_in_bytes; p=$(grep -E '^[0-9]+:cpu:' /proc/self/cgroup | cut -d: -f3); cat /sys/fs/cgroup/cpu$p/cpu.shares")
	p.Limits = sandbox.Limits{CPUShares: 512, MemoryBytes: 64 << 20}
	r := run(t, p, "", Options{})
	if os.Geteuid() != 0 {
		if !errors.Is(r.err, ErrNoCgroup) || r.code != 125 {
			t.Fatalf("unprivileged limits without a writable cgroup: code %d err %v, want ErrNoCgroup", r.code, r.err)
		}
		return
	}
	want := strconv.Itoa(64<<20) + "\n512\n"
	if isCgroup2(cgroupRoot) {
		// A pure cgroup v2 host: memory.max and cpu.weight of the session's cgroup.
		p.Argv = []string{"sh", "-c", "p=$(grep '^0::' /proc/self/cgroup | cut -d: -f3); cat /sys/fs/cgroup$p/memory.max /sys/fs/cgroup$p/cpu.weight"}
		r = run(t, p, "", Options{})
		want = strconv.Itoa(64<<20) + "\n" + strconv.FormatUint(cpuWeight(512), 10) + "\n"
	}
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.stdout != want {
		t.Errorf("limits inside: %q, want %q (stderr %q)", r.stdout, want, r.stderr)
	}
	ents, _ := os.ReadDir(filepath.Join(cgroupRoot, "memory", cgroupParent))
	for _, d := range ents {
		if d.IsDir() {
			t.Errorf("cgroup %s left behind", d.Name())
		}
	}
}

func TestCPUWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{2: 1, 1024: 39, 262144: 10000, 0: 1, 1 << 30: 10000} {
		if got := cpuWeight(shares); got != want {
			t.Errorf("cpuWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestRunFuseOverlay(t *testing.T) {
	e := newTestEnv(t)
	if os.Geteuid() != 0 {
		t.Skip("fuse-overlayfs needs /dev/fuse, which is root-only on this kind of host; unprivileged runs use kernel overlayfs")
	}
	if _, err := os.Stat("/usr/bin/fuse-overlayfs"); err != nil {
		missing(t, "fuse-overlayfs is not installed")
	}
	p := e.plan(t, "sh", "-c", "grep ' / ' /proc/mounts | cut -d' ' -f3; echo fused >/etc/fused; cat /etc/fused")
	r := run(t, p, "", Options{Overlay: "fuse"})
	if r.err != nil {
		t.Fatalf("fuse-overlayfs root: %v (stderr %q)", r.err, r.stderr)
	}
	if r.stdout != "fuse.fuse-overlayfs\nfused\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(e.upper, "etc/fused")); err != nil || string(b) != "fused\n" {
		t.Errorf("upper: %q %v", b, err)
	}
	checkNoChildren(t)
	// The fuse daemon lived in the sandbox's PID namespace and died with it.
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err == nil && bytes.Contains(b, []byte(e.upper)) {
			t.Errorf("process %s still uses the upper layer: %q", d.Name(), b)
		}
	}
}

func TestRunForwardsSIGINT(t *testing.T) {
	e := newTestEnv(t)
	// Run registers for SIGINT before the sandbox starts, so this process survives it;
	// with no terminal in the foreground, Run forwards it to the command.
	p := e.plan(t, "sh", "-c", "trap 'exit 9' INT; echo ready; while :; do sleep 0.05; done")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	go func() {
		buf := make([]byte, 16)
		if _, err := pr.Read(buf); err == nil {
			_ = syscall.Kill(os.Getpid(), syscall.SIGINT)
		}
	}()
	code, err := Run(context.Background(), p, runtime.Stdio{Stdout: pw}, Options{})
	pw.Close()
	if err != nil || code != 9 {
		t.Fatalf("code %d err %v, want the INT trap's 9", code, err)
	}
}
