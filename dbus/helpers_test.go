package dbus

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
)

func inCI() bool { return os.Getenv("CI") == "true" }

// need fails under CI and skips loudly elsewhere when a real component is missing.
func need(t *testing.T, what string) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI=true and %s is missing", what)
	}
	t.Skipf("SKIPPING: %s is missing (this test fails under CI=true)", what)
}

func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		need(t, name+" (Debian package dbus)")
	}
	return p
}

// busConfig is a private session bus: a socket in dir, anyone on it may own and call
// anything, and services are activated from serviceDir when set.
func busConfig(dir, serviceDir string) string {
	s := `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:dir=` + dir + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
`
	if serviceDir != "" {
		s += "  <servicedir>" + serviceDir + "</servicedir>\n"
	}
	return s + "</busconfig>\n"
}

// startBus starts a private dbus-daemon and returns its address. env is the daemon's
// environment, which services it activates inherit. The daemon is stopped by PID when
// the test ends.
func startBus(t *testing.T, serviceDir string, env []string) string {
	t.Helper()
	addr, _ := startBusProc(t, serviceDir, env, nil)
	return addr
}

// startBusLogged is startBus with the daemon's (and its activated services') stderr
// going to log.
func startBusLogged(t *testing.T, serviceDir string, env []string, log *syncWriter) string {
	t.Helper()
	addr, _ := startBusProc(t, serviceDir, env, log)
	return addr
}

func startBusProc(t *testing.T, serviceDir string, env []string, log *syncWriter) (string, *exec.Cmd) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs a private dbus-daemon: not run with -short")
	}
	daemon := lookTool(t, "dbus-daemon")
	// A short directory: the socket path must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "kdbus")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(busConfig(dir, serviceDir)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "--config-file="+conf, "--nofork", "--print-address=1")
	cmd.Env = env
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if log == nil {
		log = &syncWriter{w: &strings.Builder{}}
	}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dbus-daemon: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("dbus-daemon printed no address: %v (stderr: %s)", err, log.String())
	}
	return strings.TrimSpace(line), cmd
}

type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.String()
}

// client connects to the bus as a client of the service.
func client(t *testing.T, addr string) *godbus.Conn {
	t.Helper()
	c, err := godbus.Connect(addr)
	if err != nil {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func hasOwner(t *testing.T, c *godbus.Conn, name string) bool {
	t.Helper()
	var ok bool
	if err := c.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, name).Store(&ok); err != nil {
		t.Fatalf("NameHasOwner: %v", err)
	}
	return ok
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// harness is a Service running in-process on a private bus, with a client.
type harness struct {
	t      *testing.T
	addr   string
	store  string
	svc    *Service
	c      *godbus.Conn
	obj    godbus.BusObject
	cancel context.CancelFunc
	done   chan error
	log    *syncWriter
}

// testBackends is the mock backend with options.
func testBackends(o mock.Options) map[string]func() runtime.Backend {
	return map[string]func() runtime.Backend{mock.Name: func() runtime.Backend { return mock.New(o) }}
}

// startService runs a Service on a new private bus (or on addr when not "").
func startService(t *testing.T, addr string, opts Options) *harness {
	t.Helper()
	if addr == "" {
		addr = startBus(t, "", os.Environ())
	}
	h := &harness{t: t, addr: addr, log: &syncWriter{w: &strings.Builder{}}}
	if opts.StoreRoot == "" {
		opts.StoreRoot = filepath.Join(t.TempDir(), "store")
	}
	h.store = opts.StoreRoot
	if opts.Backends == nil {
		opts.Backends = testBackends(mock.Options{})
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if opts.Environ == nil {
		opts.Environ = []string{"PATH=/nonexistent", "HOME=" + t.TempDir()}
	}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	h.svc, h.cancel, h.done = svc, cancel, make(chan error, 1)
	h.c = client(t, addr)
	go func() { h.done <- svc.Serve(ctx, addr) }()
	t.Cleanup(h.stop)
	if !waitFor(5*time.Second, func() bool { return hasOwner(t, h.c, BusName) }) {
		t.Fatalf("the service never took %s; log:\n%s", BusName, h.log.String())
	}
	h.obj = h.c.Object(BusName, ObjectPath)
	return h
}

// stop cancels the service and waits for Serve to return.
func (h *harness) stop() {
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Serve: %v", err)
		}
		h.done <- err // later calls return at once
	case <-time.After(15 * time.Second):
		h.t.Errorf("Serve did not return after cancel")
	}
}

// call calls a method of the interface and returns its string reply.
func (h *harness) call(method string, args ...any) (string, error) {
	h.t.Helper()
	var s string
	err := h.obj.Call(Interface+"."+method, 0, args...).Store(&s)
	return s, err
}

func (h *harness) mustCall(method string, args ...any) string {
	h.t.Helper()
	s, err := h.call(method, args...)
	if err != nil {
		h.t.Fatalf("%s(%v): %v\nservice log:\n%s", method, args, err, h.log.String())
	}
	return s
}

// callErr calls a method that must fail with the D-Bus error name, and returns the
// error's message.
func (h *harness) callErr(name, method string, args ...any) string {
	h.t.Helper()
	_, err := h.call(method, args...)
	var de godbus.Error
	if !errors.As(err, &de) {
		h.t.Fatalf("%s(%v): want error %s, got %v", method, args, name, err)
	}
	if de.Name != name {
		h.t.Fatalf("%s(%v): error name %s (%v), want %s", method, args, de.Name, de.Body, name)
	}
	if len(de.Body) != 1 {
		h.t.Fatalf("%s: error body %v, want one message", method, de.Body)
	}
	msg, _ := de.Body[0].(string)
	if msg == "" {
		h.t.Fatalf("%s: empty error message", method)
	}
	return msg
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return v
}

// writeManifest writes a mock manifest under dir and returns its absolute path.
func writeManifest(t *testing.T, dir, file, image string, packages ...string) string {
	t.Helper()
	s := fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = %q\n\n", image)
	if len(packages) > 0 {
		q := make([]string, len(packages))
		for i, p := range packages {
			q[i] = fmt.Sprintf("%q", p)
		}
		s += "[system]\npackages = [" + strings.Join(q, ", ") + "]\n\n"
	}
	s += "[runtime]\nbackend = \"mock\"\n"
	p := filepath.Join(dir, file)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// built is the decoded reply of a build.
type built struct {
	EnvID   string `json:"env_id"`
	ShortID string `json:"short_id"`
	Name    string `json:"name"`
	State   string `json:"state"`
}

// build builds a fresh manifest (image distinguishes environments) and returns the reply.
func (h *harness) build(image string, packages ...string) built {
	h.t.Helper()
	p := writeManifest(h.t, h.t.TempDir(), "karapace.toml", image, packages...)
	return decode[built](h.t, h.mustCall("BuildEnvironment", p))
}

func mockOpts() mock.Options { return mock.Options{} }
