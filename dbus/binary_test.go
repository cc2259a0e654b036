package dbus

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"
)

// The built karapace-dbus binary, driven as the bus drives it: D-Bus activation
// through the .service file in data/dbus, the idle timeout, the unit file.

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// serviceBinary builds karapace-dbus once per test run and returns its directory.
func serviceBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds karapace-dbus: not run with -short")
	}
	// go test puts its own go tool first in PATH.
	goTool, err := exec.LookPath("go")
	if err != nil {
		need(t, "the go tool (to build karapace-dbus)")
	}
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "karapace-dbus-bin")
		if binErr != nil {
			return
		}
		cmd := exec.Command(goTool, "build", "-o", filepath.Join(binDir, "karapace-dbus"), "./cmd/karapace-dbus")
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binDir
}

var (
	cliOnce sync.Once
	cliErr  error
)

// cliBinary builds the karapace CLI once per test run, into the same directory as
// karapace-dbus (where the service looks for it), and returns its path.
func cliBinary(t *testing.T) string {
	t.Helper()
	dir := serviceBinary(t)
	cliOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "karapace"), "../cli/cmd/karapace")
		if out, err := cmd.CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("go build karapace: %v\n%s", err, out)
		}
	})
	if cliErr != nil {
		t.Fatal(cliErr)
	}
	return filepath.Join(dir, "karapace")
}

// installData writes the data file with @bindir@ replaced, as `make install-data`.
func installData(t *testing.T, src, dst, bindir string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "@bindir@") {
		t.Fatalf("%s has no @bindir@ placeholder", src)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, []byte(strings.ReplaceAll(string(b), "@bindir@", bindir)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// activatable is a private bus that activates the built service from the installed
// .service file, with the given extra environment.
type activatable struct {
	t     *testing.T
	addr  string
	c     *godbus.Conn
	store string
	log   *syncWriter
}

func startActivatable(t *testing.T, env ...string) *activatable {
	t.Helper()
	bin := serviceBinary(t)
	services := t.TempDir()
	installData(t, "../data/dbus/org.karapace.Manager1.service", filepath.Join(services, "org.karapace.Manager1.service"), bin)
	a := &activatable{t: t, store: filepath.Join(t.TempDir(), "store"), log: &syncWriter{w: &strings.Builder{}}}
	daemonEnv := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "KARAPACE_STORE=" + a.store, "KARAPACE_LOG=debug"}
	a.addr = startBusLogged(t, services, append(daemonEnv, env...), a.log)
	a.c = client(t, a.addr)
	// Whatever instance is left when the test ends is stopped by its PID (the bus
	// started it on our behalf), before the bus goes away.
	t.Cleanup(func() {
		if pid := a.pid(); pid != 0 {
			_ = syscall.Kill(pid, syscall.SIGTERM)
			waitFor(10*time.Second, func() bool { return !alive(pid) })
		}
	})
	return a
}

// pid is the process owning the name, or 0.
func (a *activatable) pid() int {
	var pid uint32
	if err := a.c.BusObject().Call("org.freedesktop.DBus.GetConnectionUnixProcessID", 0, BusName).Store(&pid); err != nil {
		return 0
	}
	return int(pid)
}

// alive reports whether pid is a live process (not gone, not a zombie).
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func (a *activatable) call(method string, args ...any) string {
	a.t.Helper()
	var s string
	if err := a.c.Object(BusName, ObjectPath).Call(Interface+"."+method, 0, args...).Store(&s); err != nil {
		a.t.Fatalf("%s: %v\nbus and service log:\n%s", method, err, a.log.String())
	}
	return s
}

func TestActivationThroughServiceFile(t *testing.T) {
	a := startActivatable(t, "KARAPACE_DBUS_IDLE_TIMEOUT=30")
	if hasOwner(t, a.c, BusName) {
		t.Fatal("the service runs before anyone called it")
	}
	var activatables []string
	if err := a.c.BusObject().Call("org.freedesktop.DBus.ListActivatableNames", 0).Store(&activatables); err != nil {
		t.Fatal(err)
	}
	if !contains(activatables, BusName) {
		t.Fatalf("%s not activatable: %v", BusName, activatables)
	}
	// The first call starts it.
	start := time.Now()
	if got := a.call("ListEnvironments"); got != "[]" {
		t.Fatalf("ListEnvironments = %q", got)
	}
	t.Logf("activation and first call: %s", time.Since(start))
	pid := a.pid()
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(exe) != "karapace-dbus" {
		t.Fatalf("name owned by pid %d (%s, %v), want the karapace-dbus binary", pid, exe, err)
	}
	// It runs on the store the bus's environment names.
	v, err := a.c.Object(BusName, ObjectPath).GetProperty(Interface + "." + PropStoreRoot)
	if err != nil || v.Value() != a.store {
		t.Fatalf("StoreRoot = %v (%v), want %s", v.Value(), err, a.store)
	}
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	b := decode[built](t, a.call("BuildNamedEnvironment", p, "activated"))
	if st := decode[status](t, a.call("GetEnvironmentStatus", "activated")); st.EnvID != b.EnvID {
		t.Fatalf("status %+v", st)
	}
	if a.pid() != pid {
		t.Fatal("a second instance was started")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestIdleTimeoutOfBinary(t *testing.T) {
	const idle = 2 * time.Second
	a := startActivatable(t, "KARAPACE_DBUS_IDLE_TIMEOUT=2", "KARAPACE_MOCK_BUILD_DELAY=3s")
	a.call("ListPresets")
	pid := a.pid()
	if pid == 0 {
		t.Fatal("not activated")
	}
	// Calls every 700 ms keep it alive for 4 s, twice the timeout.
	for range 6 {
		time.Sleep(700 * time.Millisecond)
		a.call("ListEnvironments")
		if got := a.pid(); got != pid {
			t.Fatalf("the service was replaced while called (pid %d, then %d)", pid, got)
		}
	}
	// A build of 3 s, longer than the timeout, keeps it alive.
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	var reply string
	call := a.c.Object(BusName, ObjectPath).Call(Interface+".BuildEnvironment", 0, p)
	if err := call.Store(&reply); err != nil {
		t.Fatalf("build: %v\n%s", err, a.log.String())
	}
	if got := a.pid(); got != pid {
		t.Fatalf("the service restarted during a build (pid %d, then %d)", pid, got)
	}
	// Silence ends it: the name goes, then the process.
	last := time.Now()
	if !waitFor(idle+3*time.Second, func() bool { return !hasOwner(t, a.c, BusName) }) {
		t.Fatalf("still running %s after the last call", time.Since(last))
	}
	gone := time.Since(last)
	if !waitFor(5*time.Second, func() bool { return !alive(pid) }) {
		t.Fatalf("pid %d released the name but did not exit", pid)
	}
	t.Logf("idle exit %s after the last call (timeout %s)", gone, idle)
	if gone < idle-200*time.Millisecond {
		t.Fatalf("exited %s after the last call, before the %s timeout", gone, idle)
	}
	if !strings.Contains(a.log.String(), "idle timeout reached") {
		t.Fatalf("log:\n%s", a.log.String())
	}
	// The next call activates a new instance, on the same store.
	if envs := decode[[]status](t, a.call("ListEnvironments")); len(envs) != 1 {
		t.Fatalf("after reactivation: %+v", envs)
	}
	if np := a.pid(); np == 0 || np == pid {
		t.Fatalf("not reactivated (pid %d, before %d)", np, pid)
	}
}

func TestBinaryErrors(t *testing.T) {
	bin := filepath.Join(serviceBinary(t), "karapace-dbus")
	run := func(env ...string) (string, int) {
		cmd := exec.Command(bin)
		cmd.Env = env
		out, _ := cmd.CombinedOutput()
		return string(out), cmd.ProcessState.ExitCode()
	}
	if out, code := run("HOME=/nonexistent", "KARAPACE_DBUS_IDLE_TIMEOUT=soon"); code != 1 || !strings.Contains(out, "KARAPACE_DBUS_IDLE_TIMEOUT") {
		t.Fatalf("bad timeout: exit %d, %s", code, out)
	}
	if out, code := run("HOME=/nonexistent"); code != 1 || !strings.Contains(out, "no session bus") {
		t.Fatalf("no bus: exit %d, %s", code, out)
	}
	// The name is taken: a second instance says so and exits 1.
	addr := startBus(t, "", os.Environ())
	startService(t, addr, Options{})
	if out, code := run("HOME=/nonexistent", "KARAPACE_STORE="+t.TempDir(), "DBUS_SESSION_BUS_ADDRESS="+addr); code != 1 || !strings.Contains(out, "already owned") {
		t.Fatalf("name taken: exit %d, %s", code, out)
	}
}

func TestBinaryStopsOnSIGTERM(t *testing.T) {
	addr := startBus(t, "", os.Environ())
	cmd := exec.Command(filepath.Join(serviceBinary(t), "karapace-dbus"))
	cmd.Env = []string{"HOME=" + t.TempDir(), "DBUS_SESSION_BUS_ADDRESS=" + addr, "KARAPACE_DBUS_IDLE_TIMEOUT=0"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	c := client(t, addr)
	if !waitFor(5*time.Second, func() bool { return hasOwner(t, c, BusName) }) {
		t.Fatal("not started")
	}
	// The default store is under HOME.
	v, err := c.Object(BusName, ObjectPath).GetProperty(Interface + "." + PropStoreRoot)
	if err != nil || !strings.HasSuffix(v.Value().(string), "/.local/share/karapace") {
		t.Fatalf("StoreRoot = %v (%v)", v.Value(), err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGTERM")
	}
	var log []string
	for l := range lines {
		log = append(log, l)
	}
	if !strings.Contains(strings.Join(log, "\n"), "karapace-dbus starting, store: ") {
		t.Fatalf("log: %q", log)
	}
}

// TestRunEnvironmentWithRealCLI runs the whole chain: the service opens a terminal
// (a script that runs its -e command as a terminal emulator would), which runs the
// real karapace CLI's enter on the service's store.
func TestRunEnvironmentWithRealCLI(t *testing.T) {
	karapace := cliBinary(t)
	bin := t.TempDir()
	out := filepath.Join(bin, "session.out")
	script := "#!/bin/sh\n[ \"$1\" = -e ] && shift\n\"$@\" > " + out + ".tmp 2>&1\necho \"exit $?\" >> " + out + ".tmp\nmv " + out + ".tmp " + out + "\n"
	if err := os.WriteFile(filepath.Join(bin, "x-terminal-emulator"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	h := startService(t, "", Options{
		KarapaceBin: karapace,
		Environ:     []string{"PATH=" + bin + ":/usr/bin:/bin", "HOME=" + t.TempDir()},
	})
	b := h.build("rolling")
	r := decode[runReply](t, h.mustCall("RunEnvironment", b.ShortID))
	var session []byte
	if !waitFor(20*time.Second, func() bool {
		var err error
		session, err = os.ReadFile(out)
		return err == nil
	}) {
		t.Fatalf("the session never ended (terminal pid %d)", r.PID)
	}
	t.Logf("session output: %q", session)
	if !strings.HasSuffix(strings.TrimSpace(string(session)), "exit 0") {
		t.Fatalf("karapace enter in the terminal:\n%s", session)
	}
	// The session went through the engine: the environment is back to built.
	if st := decode[status](t, h.mustCall("GetEnvironmentStatus", b.EnvID)); st.State != "built" {
		t.Fatalf("after the session: %+v", st)
	}
}
