package oci

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
	"golang.org/x/sys/unix"
)

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): %s", why)
	}
	t.Skipf("SKIPPING: %s (this test fails under CI=true)", why)
}

// testBackend is the backend pinned to runtime name, with a temporary home.
func testBackend(t *testing.T, name string) *Backend {
	t.Helper()
	if testing.Short() {
		t.Skip("SKIPPING: OCI end-to-end test in -short mode")
	}
	if _, err := exec.LookPath(name); err != nil {
		missing(t, name+" is not installed (apt-get install "+name+")")
	}
	home := t.TempDir()
	return New(Options{
		Host: func() sandbox.Host {
			h := sandbox.HostFromOS()
			h.Home, h.Env["HOME"] = home, home
			return h
		},
		Runtime: Host{Getenv: func(k string) string {
			if k == EnvRuntime {
				return name
			}
			return ""
		}},
	})
}

// builtSpec lays out an environment over rootfs as Build leaves it.
func builtSpec(t *testing.T, rootfs string) *runtime.Spec {
	store := t.TempDir()
	id := schema.SumString("karapace oci " + t.Name())
	env := filepath.Join(store, "env", id.String())
	if err := os.MkdirAll(filepath.Join(env, upperDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rootfs, filepath.Join(env, lowerLink)); err != nil {
		t.Fatal(err)
	}
	return &runtime.Spec{EnvID: id, StoreRoot: store, EnvDir: env, Manifest: schema.Normalized{ManifestVersion: 1, BaseImage: "busybox", RuntimeBackend: "oci"}}
}

// TestLimits: as root, the runtime applies the manifest's limits to the container's
// cgroup (v1 here: memory.limit_in_bytes and cpu.shares), read on the host while the
// session runs.
func TestLimits(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("limits are applied by a runtime running as root; rootless runtimes need a delegated cgroup")
	}
	for _, name := range []string{"crun", "runc"} {
		t.Run(name, func(t *testing.T) {
			b := testBackend(t, name)
			spec := builtSpec(t, testrootfs.Busybox(t))
			mem, cpu := uint64(96), uint64(512)
			spec.Manifest.MemoryLimitMB, spec.Manifest.CPUShares = &mem, &cpu
			ctx := context.Background()
			done := make(chan error, 1)
			go func() {
				_, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}, []string{"sleep", "60"})
				done <- err
			}()
			defer func() {
				if err := b.Stop(ctx, spec, 0); err != nil {
					t.Error(err)
				}
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			var pid int
			for i := 0; i < 500 && pid == 0; i++ {
				st, err := b.Status(ctx, spec)
				if err != nil {
					t.Fatal(err)
				}
				if len(st.PIDs) == 1 {
					pid = st.PIDs[0]
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
			if pid == 0 {
				t.Fatal("the session never showed up in Status")
			}
			groups, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
			if err != nil {
				t.Fatal(err)
			}
			knob := func(controller, file string) string {
				for _, l := range strings.Split(string(groups), "\n") {
					f := strings.SplitN(l, ":", 3)
					if len(f) == 3 && slices.Contains(strings.Split(f[1], ","), controller) {
						v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", f[1], f[2], file))
						if err == nil {
							return strings.TrimSpace(string(v))
						}
					}
				}
				return ""
			}
			var fs syscall.Statfs_t
			if err := syscall.Statfs("/sys/fs/cgroup", &fs); err != nil {
				t.Fatal(err)
			}
			if fs.Type == cgroup2Magic {
				mv, cv := knob("", "memory.max"), knob("", "cpu.weight")
				if mv != strconv.FormatUint(mem<<20, 10) || cv == "" || cv == "100" {
					t.Errorf("cgroup v2 of the session (%q): memory.max %q cpu.weight %q", groups, mv, cv)
				}
				return
			}
			mv, cv := knob("memory", "memory.limit_in_bytes"), knob("cpu", "cpu.shares")
			if mv != strconv.FormatUint(mem<<20, 10) || cv != "512" {
				t.Errorf("cgroup of the session (%q): memory %q cpu.shares %q, want %d and 512", groups, mv, cv, mem<<20)
			}
		})
	}
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestEnterTerminal: Enter with a terminal on stdin gives the session a terminal of its
// own (process.terminal), with our input and window size, and hands ours back intact.
func TestEnterTerminal(t *testing.T) {
	for _, name := range []string{"crun", "runc"} {
		t.Run(name, func(t *testing.T) {
			b := testBackend(t, name)
			spec := builtSpec(t, busybox(t))
			master, slave := openPTY(t)
			defer master.Close()
			defer slave.Close()
			if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 31, Col: 97}); err != nil {
				t.Fatal(err)
			}
			before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			done := make(chan struct{})
			go func() {
				defer close(done)
				buf := make([]byte, 4096)
				for {
					n, err := master.Read(buf)
					out.Write(buf[:n])
					if err != nil {
						return
					}
				}
			}()
			go func() {
				time.Sleep(time.Second)
				_, _ = master.Write([]byte("typed\r"))
			}()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			code, err := b.Enter(ctx, spec, runtime.Stdio{Stdin: slave, Stdout: slave, Stderr: slave}, []string{"sh", "-c", "tty; stty size; read line; echo got:$line; exit 4"})
			if err != nil || code != 4 {
				t.Fatalf("code %d err %v, want 4 (output %q)", code, err, out.String())
			}
			after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
			if err != nil {
				t.Fatal(err)
			}
			if *after != *before {
				t.Error("the user's terminal was not restored")
			}
			slave.Close()
			<-done
			got := strings.ReplaceAll(out.String(), "\r", "")
			for _, want := range []string{"/dev/pts/", "31 97\n", "got:typed\n"} {
				if !strings.Contains(got, want) {
					t.Errorf("terminal output %q lacks %q", got, want)
				}
			}
		})
	}
}

func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, m.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Fatal(e)
	}
	n, err := unix.IoctlGetUint32(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

// TestBuildInstallsThroughOCI resolves and installs a Debian package with apt under the
// OCI runtime (crun, the one that needs the hybrid-cgroup workaround here), from a local
// image tarball through the image cache, and runs the installed program.
func TestBuildInstallsThroughOCI(t *testing.T) {
	b := testBackend(t, "crun")
	if os.Geteuid() != 0 {
		t.Skip("the Debian fixture is built as root")
	}
	img := testrootfs.DebianImage(t, "bookworm")
	store := t.TempDir()
	id := schema.SumString("karapace oci build")
	spec := &runtime.Spec{
		EnvID: id, StoreRoot: store, EnvDir: filepath.Join(store, "env", id.String()),
		Manifest: schema.Normalized{ManifestVersion: 1, BaseImage: img.Tarball, RuntimeBackend: "oci", SystemPackages: []string{"hello"}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	res, err := b.Resolve(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.ResolvedPackages) != 1 || res.ResolvedPackages[0].Name != "hello" || res.ResolvedPackages[0].Version == "" {
		t.Fatalf("resolution %+v", res.ResolvedPackages)
	}
	spec.Packages = res.ResolvedPackages
	if err := b.Build(ctx, spec); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	code, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"hello"})
	if err != nil || code != 0 || out.String() != "Hello, world!\n" {
		t.Fatalf("hello: exit %d %v %q", code, err, out.String())
	}
	if _, err := os.Stat(filepath.Join(spec.EnvDir, upperDir, "usr", "bin", "hello")); err != nil {
		t.Errorf("hello is not in the upper layer: %v", err)
	}
	if err := b.Destroy(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stateRoot(spec)); err == nil {
		t.Error("destroy left the OCI state directory")
	}
}

// TestHelperCrashSession is the process TestCrashCleanup kills: it runs one long session
// and is SIGKILLed in the middle of it. It does nothing unless started by that test.
func TestHelperCrashSession(t *testing.T) {
	store := os.Getenv("KARAPACE_OCI_CRASH_STORE")
	if store == "" {
		t.Skip("helper process of TestCrashCleanup")
	}
	b := testBackend(t, os.Getenv("KARAPACE_OCI_CRASH_RUNTIME"))
	spec := crashSpec(store)
	code, err := b.Exec(context.Background(), spec, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: os.Stdout, Stderr: os.Stderr}, []string{"sh", "-c", "echo ready; exec sleep 60"})
	t.Fatalf("the session was not supposed to end: %d %v", code, err)
}

func crashSpec(store string) *runtime.Spec {
	id := schema.SumString("karapace oci crash")
	return &runtime.Spec{EnvID: id, StoreRoot: store, EnvDir: filepath.Join(store, "env", id.String()), Manifest: schema.Normalized{ManifestVersion: 1, BaseImage: "busybox", RuntimeBackend: "oci"}}
}

// TestCrashCleanup: karapace dies (SIGKILL) during a session. The runtime dies with it;
// the container, orphaned, keeps running and shows in Status; Stop ends it, the stopped
// container is deleted with its scratch directory, and Destroy leaves no state.
func TestCrashCleanup(t *testing.T) {
	for _, name := range []string{"crun", "runc"} {
		t.Run(name, func(t *testing.T) {
			b := testBackend(t, name)
			store := t.TempDir()
			spec := crashSpec(store)
			if err := os.MkdirAll(filepath.Join(spec.EnvDir, upperDir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(busybox(t), filepath.Join(spec.EnvDir, lowerLink)); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run", "^TestHelperCrashSession$", "-test.count=1")
			// The helper is killed before its own cleanup runs: its temp dirs go under ours.
			cmd.Env = append(os.Environ(), "KARAPACE_OCI_CRASH_STORE="+store, "KARAPACE_OCI_CRASH_RUNTIME="+name, "TMPDIR="+t.TempDir())
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line := make([]byte, 6)
			if _, err := io.ReadFull(stdout, line); err != nil || string(line) != "ready\n" {
				_ = cmd.Process.Kill()
				t.Fatalf("helper said %q %v", line, err)
			}
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			ctx := context.Background()
			var st runtime.Status
			for i := 0; i < 100; i++ { // the runtime's death reaches its state a moment later
				if st, err = b.Status(ctx, spec); err != nil || len(st.PIDs) == 1 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			// runc leaves the container running, orphaned; crun may call it stopped while
			// it lives on. Either way it shows as running, and Stop ends it.
			if !st.Running || len(st.PIDs) != 1 {
				t.Fatalf("status after the crash: %+v (the orphaned container still runs)", st)
			}
			if err := b.Stop(ctx, spec, 200*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 100 && alive(st.PIDs[0]); i++ {
				time.Sleep(20 * time.Millisecond) // a killed process takes a moment to go
			}
			if alive(st.PIDs[0]) {
				t.Errorf("container process %d survived stop", st.PIDs[0])
			}
			if st, err := b.Status(ctx, spec); err != nil || st.Running {
				t.Fatalf("status after stop: %+v %v", st, err)
			}
			if err := b.Destroy(ctx, spec); err != nil {
				t.Fatal(err)
			}
			if ents, _ := os.ReadDir(filepath.Join(spec.EnvDir, workDir)); len(ents) != 0 {
				t.Errorf("the crashed session's scratch is left: %v", ents)
			}
			if _, err := os.Stat(stateRoot(spec)); err == nil {
				t.Error("destroy left the OCI state directory")
			}
			mounts, _ := os.ReadFile("/proc/mounts")
			if strings.Contains(string(mounts), store) {
				t.Errorf("left mounted: %s", mounts)
			}
		})
	}
}

// alive reports whether pid exists and is not a zombie waiting for a reaper.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || len(b) < i+3 || b[i+2] != 'Z'
}

// busybox is the busybox rootfs as the caller can use it: the shared fixture for root, a
// copy of its own for an unprivileged caller (root's files are unmapped in its user
// namespace, so mount points could not be created in them).
func busybox(t *testing.T) string {
	t.Helper()
	fixture := testrootfs.Busybox(t)
	if os.Geteuid() == 0 {
		return fixture
	}
	dst := filepath.Join(t.TempDir(), "rootfs")
	if out, err := exec.Command("cp", "-a", "--no-preserve=ownership", fixture, dst).CombinedOutput(); err != nil {
		t.Fatalf("copy the rootfs: %v: %s", err, out)
	}
	return dst
}
