package dbus

import (
	"context"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/introspect"
	"github.com/godbus/dbus/v5/prop"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func TestProperties(t *testing.T) {
	h := startService(t, "", Options{})
	v, err := h.obj.GetProperty(Interface + "." + PropAPIVersion)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := v.Value().(uint32); !ok || got != 1 || v.Signature().String() != "u" {
		t.Fatalf("ApiVersion = %v (%s), want uint32 1", v.Value(), v.Signature())
	}
	v, err = h.obj.GetProperty(Interface + "." + PropStoreRoot)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := v.Value().(string); !ok || got != h.store {
		t.Fatalf("StoreRoot = %v, want %s", v.Value(), h.store)
	}
	var all map[string]godbus.Variant
	if err := h.obj.Call("org.freedesktop.DBus.Properties.GetAll", 0, Interface).Store(&all); err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 || all[PropAPIVersion].Value() != uint32(1) || all[PropStoreRoot].Value() != h.store || all[PropActiveOperations].Value() != uint32(0) {
		t.Fatalf("GetAll = %v", all)
	}
	err = h.obj.SetProperty(Interface+"."+PropAPIVersion, godbus.MakeVariant(uint32(2)))
	var de godbus.Error
	if !errors.As(err, &de) || de.Name != prop.ErrReadOnly.Name {
		t.Fatalf("Set ApiVersion: %v, want %s", err, prop.ErrReadOnly.Name)
	}
	if _, err := h.obj.GetProperty(Interface + ".NoSuchProperty"); err == nil {
		t.Fatal("unknown property read without error")
	}
}

// introspectNode calls Introspect on path and parses the XML.
func introspectNode(t *testing.T, c *godbus.Conn, path godbus.ObjectPath) (string, *introspect.Node) {
	t.Helper()
	var x string
	if err := c.Object(BusName, path).Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Store(&x); err != nil {
		t.Fatalf("Introspect %s: %v", path, err)
	}
	var n introspect.Node
	if err := xml.Unmarshal([]byte(x), &n); err != nil {
		t.Fatalf("introspection of %s is not XML: %v\n%s", path, err, x)
	}
	return x, &n
}

func TestIntrospection(t *testing.T) {
	h := startService(t, "", Options{})
	x, n := introspectNode(t, h.c, ObjectPath)
	if !strings.HasPrefix(x, "<!DOCTYPE node") {
		t.Fatalf("no doctype: %.80s", x)
	}
	ifaces := map[string]introspect.Interface{}
	for _, i := range n.Interfaces {
		ifaces[i.Name] = i
	}
	for _, want := range []string{Interface, "org.freedesktop.DBus.Properties", "org.freedesktop.DBus.Introspectable", "org.freedesktop.DBus.Peer"} {
		if _, ok := ifaces[want]; !ok {
			t.Errorf("interface %s missing", want)
		}
	}
	m := ifaces[Interface]
	sig := func(args []introspect.Arg) string {
		var parts []string
		for _, a := range args {
			parts = append(parts, a.Direction+" "+a.Type+" "+a.Name)
		}
		return strings.Join(parts, ", ")
	}
	got := map[string]string{}
	for _, me := range m.Methods {
		got[me.Name] = sig(me.Args)
	}
	want := map[string]string{
		"ListEnvironments":      "out s environments",
		"GetEnvironmentStatus":  "in s id_or_name, out s status",
		"GetEnvironmentHash":    "in s id_or_name, out s env_id",
		"BuildEnvironment":      "in s manifest_path, out s result",
		"BuildNamedEnvironment": "in s manifest_path, in s name, out s result",
		"DestroyEnvironment":    "in s id_or_name, out s result",
		"RunEnvironment":        "in s id_or_name, out s result",
		"RenameEnvironment":     "in s id_or_name, in s new_name, out s result",
		"ListPresets":           "out s presets",
		"GarbageCollect":        "in b dry_run, out s report",
		"VerifyStore":           "out s report",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("methods = %v", got)
	}
	if len(m.Signals) != 1 || m.Signals[0].Name != "EnvironmentChanged" || sig(m.Signals[0].Args) != " s env_id,  s state" {
		t.Fatalf("signals = %+v", m.Signals)
	}
	props := map[string]string{}
	for _, p := range m.Properties {
		props[p.Name] = p.Type + " " + p.Access + " " + p.Annotations[0].Value
	}
	if !reflect.DeepEqual(props, map[string]string{"ApiVersion": "u read const", "StoreRoot": "s read const", "ActiveOperations": "u read true"}) {
		t.Fatalf("properties = %v", props)
	}
	// The tree is walkable from the root.
	path := "/"
	for _, child := range []string{"org", "karapace", "Manager1"} {
		_, n := introspectNode(t, h.c, godbus.ObjectPath(path))
		if len(n.Children) != 1 || n.Children[0].Name != child {
			t.Fatalf("children of %s = %+v, want %s", path, n.Children, child)
		}
		path = strings.TrimSuffix(path, "/") + "/" + child
	}
}

// TestIntrospectionMatchesExports checks the hand-written introspection data against
// the Go methods godbus actually exports, so the two can never drift apart.
func TestIntrospectionMatchesExports(t *testing.T) {
	exported := map[string]string{}
	for _, m := range introspect.Methods(&manager{}) {
		var in, out []string
		for _, a := range m.Args {
			if a.Direction == "in" {
				in = append(in, a.Type)
			} else {
				out = append(out, a.Type)
			}
		}
		exported[m.Name] = strings.Join(in, "") + "->" + strings.Join(out, "")
	}
	described := map[string]string{}
	for _, m := range methods {
		var in, out []string
		for _, a := range m.in {
			in = append(in, a[1])
		}
		for _, a := range m.out {
			out = append(out, a[1])
		}
		described[m.name] = strings.Join(in, "") + "->" + strings.Join(out, "")
	}
	if !reflect.DeepEqual(exported, described) || len(exported) != 11 {
		t.Fatalf("exported %v\ndescribed %v", exported, described)
	}
}

// signals subscribes c to the service's signals of one member.
func signals(t *testing.T, c *godbus.Conn, iface, member string) chan *godbus.Signal {
	t.Helper()
	if err := c.AddMatchSignal(godbus.WithMatchObjectPath(ObjectPath), godbus.WithMatchInterface(iface), godbus.WithMatchMember(member)); err != nil {
		t.Fatal(err)
	}
	ch := make(chan *godbus.Signal, 64)
	c.Signal(ch)
	return ch
}

func nextSignal(t *testing.T, ch chan *godbus.Signal, d time.Duration) *godbus.Signal {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(d):
		t.Fatalf("no signal within %s", d)
		return nil
	}
}

func TestEnvironmentChangedSignal(t *testing.T) {
	h := startService(t, "", Options{WatchInterval: 100 * time.Millisecond})
	ch := signals(t, h.c, Interface, SignalEnvironmentChanged)
	expect := func(id, state string) {
		t.Helper()
		s := nextSignal(t, ch, 3*time.Second)
		if s.Name != Interface+".EnvironmentChanged" || s.Path != ObjectPath || !reflect.DeepEqual(s.Body, []any{id, state}) {
			t.Fatalf("signal %s %v, want EnvironmentChanged(%s, %s)", s.Name, s.Body, id, state)
		}
	}
	b := h.build("rolling")
	expect(b.EnvID, "built")
	// A change made by someone else (here another Engine, as the CLI would) is seen
	// by the watcher.
	eng, err := core.New(context.Background(), core.Options{StoreRoot: h.store, Backends: testBackends(mock.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := schema.ParseEnvID(b.EnvID)
	if err := eng.Freeze(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	expect(b.EnvID, "frozen")
	h.mustCall("DestroyEnvironment", b.EnvID)
	expect(b.EnvID, "destroyed")
	// Nothing is announced twice: the watcher agrees with what the calls announced.
	select {
	case s := <-ch:
		t.Fatalf("extra signal %v", s.Body)
	case <-time.After(300 * time.Millisecond):
	}
}

// notifications is a fake org.freedesktop.Notifications server on the bus.
type notifications struct {
	mu  sync.Mutex
	got [][]any
	ch  chan struct{}
}

func (n *notifications) Notify(app string, replaces uint32, icon, summary, body string, actions []string, hints map[string]godbus.Variant, timeout int32) (uint32, *godbus.Error) {
	n.mu.Lock()
	n.got = append(n.got, []any{app, replaces, icon, summary, body, len(actions), len(hints), timeout})
	id := uint32(len(n.got))
	n.mu.Unlock()
	n.ch <- struct{}{}
	return id, nil
}

func startNotifications(t *testing.T, addr string) *notifications {
	t.Helper()
	c := client(t, addr)
	n := &notifications{ch: make(chan struct{}, 16)}
	if err := c.Export(n, notifyPath, notifyName); err != nil {
		t.Fatal(err)
	}
	if r, err := c.RequestName(notifyName, godbus.NameFlagDoNotQueue); err != nil || r != godbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("own %s: %v %v", notifyName, r, err)
	}
	return n
}

func (n *notifications) next(t *testing.T) []any {
	t.Helper()
	select {
	case <-n.ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.got[len(n.got)-1]
}

func TestBuildNotifications(t *testing.T) {
	addr := startBus(t, "", os.Environ())
	n := startNotifications(t, addr)
	h := startService(t, addr, Options{})
	b := h.build("rolling")
	want := []any{"Karapace", uint32(0), "", "Build Complete", "Environment " + b.ShortID + " built", 0, 0, int32(5000)}
	if got := n.next(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("notification %v, want %v", got, want)
	}
	p := writeManifest(t, t.TempDir(), "karapace.toml", "other")
	nb := decode[built](t, h.mustCall("BuildNamedEnvironment", p, "web"))
	if got := n.next(t); got[3] != "Build Complete" || got[4] != "Environment 'web' ("+nb.ShortID+") built" {
		t.Fatalf("named notification %v", got)
	}
	bad := writeManifest(t, t.TempDir(), "karapace.toml", "rolling", mock.FailPackage)
	msg := h.callErr(ErrNameRuntime, "BuildEnvironment", bad)
	if got := n.next(t); got[3] != "Build Failed" || got[4] != msg {
		t.Fatalf("failure notification %v, want body %q", got, msg)
	}
}

func TestBuildWithoutNotificationServer(t *testing.T) {
	// No notification server on the bus: builds succeed all the same (the other
	// tests run this way too); the failed notification is only logged.
	h := startService(t, "", Options{})
	h.build("rolling")
	if !waitFor(3*time.Second, func() bool { return strings.Contains(h.log.String(), "desktop notification not sent") }) {
		t.Fatalf("the failed notification was not logged:\n%s", h.log.String())
	}
}

func TestConcurrentCallsDuringBuild(t *testing.T) {
	// The mock's build blocks until the test lets it go, so "the calls returned while
	// the build was running" holds by construction, however loaded the machine is.
	release := make(chan struct{})
	var releaseOnce sync.Once
	letGo := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(letGo)
	hook := func(ctx context.Context, _ *runtime.Spec) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h := startService(t, "", Options{Backends: testBackends(mock.Options{BuildHook: hook})})
	props := signals(t, h.c, "org.freedesktop.DBus.Properties", "PropertiesChanged")
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	done := make(chan error, 1)
	var raw string
	go func() {
		var err error
		raw, err = h.call("BuildEnvironment", p)
		done <- err
	}()
	// ActiveOperations goes to 1 with a PropertiesChanged signal.
	s := nextSignal(t, props, 5*time.Second)
	if s.Body[0] != Interface || !reflect.DeepEqual(s.Body[1], map[string]godbus.Variant{PropActiveOperations: godbus.MakeVariant(uint32(1))}) {
		t.Fatalf("PropertiesChanged %v", s.Body)
	}
	if v, _ := h.obj.GetProperty(Interface + "." + PropActiveOperations); v.Value() != uint32(1) {
		t.Fatalf("ActiveOperations during the build = %v", v.Value())
	}
	// While the build runs, every other kind of call answers.
	var slowest time.Duration
	for _, c := range []func() error{
		func() error { _, err := h.call("ListEnvironments"); return err },
		func() error { _, err := h.call("ListPresets"); return err },
		func() error {
			if _, err := h.call("GetEnvironmentStatus", "nothing-yet"); err == nil {
				return errors.New("status of an environment that does not exist yet")
			}
			return nil
		},
		func() error { _, err := h.call("VerifyStore"); return err },
		func() error { _, err := h.obj.GetProperty(Interface + "." + PropAPIVersion); return err },
		func() error {
			return h.obj.Call("org.freedesktop.DBus.Introspectable.Introspect", 0).Err
		},
		func() error { return h.obj.Call("org.freedesktop.DBus.Peer.Ping", 0).Err },
	} {
		t0 := time.Now()
		if err := c(); err != nil {
			t.Fatal(err)
		}
		slowest = max(slowest, time.Since(t0))
	}
	t.Logf("slowest call during a build: %s", slowest)
	select {
	case err := <-done:
		t.Fatalf("the build ended before the test let it go: %v", err)
	default:
	}
	// A second build queues behind the first on the store lock, without blocking.
	p2 := writeManifest(t, t.TempDir(), "karapace.toml", "second")
	second := make(chan error, 1)
	go func() { _, err := h.call("BuildEnvironment", p2); second <- err }()
	if !waitFor(5*time.Second, func() bool {
		v, _ := h.obj.GetProperty(Interface + "." + PropActiveOperations)
		return v.Value() == uint32(2)
	}) {
		t.Fatal("ActiveOperations never counted the second build")
	}
	h.mustCall("ListEnvironments")
	letGo()
	if err := <-done; err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := <-second; err != nil {
		t.Fatalf("second build: %v", err)
	}
	if decode[built](t, raw).State != "built" {
		t.Fatalf("reply %s", raw)
	}
	if n := len(h.list()); n != 2 {
		t.Fatalf("%d environments after two builds", n)
	}
	if !waitFor(5*time.Second, func() bool {
		v, _ := h.obj.GetProperty(Interface + "." + PropActiveOperations)
		return v.Value() == uint32(0)
	}) {
		t.Fatal("ActiveOperations did not return to 0")
	}
}

// holdStoreLock takes the store's lock as another process (the CLI) would.
func holdStoreLock(t *testing.T, root string) (release func()) {
	t.Helper()
	l := store.NewLayout(root)
	if err := os.MkdirAll(l.StoreDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(l.LockFile(), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { f.Close() }) }
	t.Cleanup(release)
	return release
}

func TestStoreLockedElsewhere(t *testing.T) {
	h := startService(t, "", Options{LockTimeout: 400 * time.Millisecond})
	b := h.build("rolling")
	release := holdStoreLock(t, h.store)
	start := time.Now()
	msg := h.callErr(ErrNameStoreLocked, "DestroyEnvironment", b.EnvID)
	if took := time.Since(start); took < 400*time.Millisecond || took > 3*time.Second {
		t.Fatalf("StoreLocked after %s, want after the 400ms lock timeout", took)
	}
	if !strings.Contains(msg, "store lock") {
		t.Fatalf("message %q", msg)
	}
	// A call waiting for the lock never stalls the others.
	waiting := make(chan error, 1)
	go func() { _, err := h.call("RenameEnvironment", b.EnvID, "later"); waiting <- err }()
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	h.mustCall("GetEnvironmentStatus", b.EnvID)
	if d := time.Since(t0); d > 3*time.Second {
		t.Fatalf("status took %s while a call waited for the lock", d)
	}
	release()
	if err := <-waiting; err != nil {
		t.Fatalf("rename after the lock was released: %v", err)
	}
	if st := decode[status](t, h.mustCall("GetEnvironmentStatus", "later")); st.EnvID != b.EnvID {
		t.Fatalf("status %+v", st)
	}
}

// fakeTerminal writes an executable script that records its pid, argv and stdin, as
// a terminal emulator that ran the command would.
func fakeTerminal(t *testing.T, dir, name string) (record string) {
	t.Helper()
	record = filepath.Join(dir, name+".record")
	script := "#!/bin/sh\nPATH=/usr/bin:/bin\n" +
		"out=$(readlink /proc/$$/fd/1)\n" +
		"{ echo $$; readlink /proc/self/fd/0; echo \"$out\"; for a in \"$@\"; do echo \"$a\"; done; } > " + record + ".tmp\n" +
		"mv " + record + ".tmp " + record + "\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return record
}

func readRecord(t *testing.T, record string) (pid int, stdin, stdout string, argv []string) {
	t.Helper()
	var b []byte
	if !waitFor(5*time.Second, func() bool {
		var err error
		b, err = os.ReadFile(record)
		return err == nil
	}) {
		t.Fatalf("the terminal never ran (%s)", record)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	pid, _ = strconv.Atoi(lines[0])
	return pid, lines[1], lines[2], lines[3:]
}

func TestRunEnvironmentOpensTerminal(t *testing.T) {
	bin := t.TempDir()
	home := t.TempDir()
	karapace := filepath.Join(bin, "karapace")
	if err := os.WriteFile(karapace, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	tRecord := fakeTerminal(t, bin, "my-term")
	fakeTerminal(t, bin, "x-terminal-emulator") // not used: $TERMINAL comes first
	environ := []string{"PATH=" + bin, "HOME=" + home, "TERMINAL=my-term --class karapace"}
	h := startService(t, "", Options{Environ: environ})
	b := h.build("rolling")

	raw := h.mustCall("RunEnvironment", b.ShortID)
	r := decode[runReply](t, raw)
	pid, stdin, stdout, argv := readRecord(t, tRecord)
	if r.Entered != b.EnvID || r.PID != pid || r.Terminal != filepath.Join(bin, "my-term") {
		t.Fatalf("RunEnvironment reply %s; the terminal ran as pid %d", raw, pid)
	}
	want := []string{"--class", "karapace", "-e", karapace, "--store", h.store, "enter", b.EnvID}
	if !reflect.DeepEqual(argv, want) {
		t.Fatalf("terminal argv %q, want %q", argv, want)
	}
	if stdin != "/dev/null" || stdout != "/dev/null" {
		t.Fatalf("the terminal got the service's stdio: stdin %s stdout %s", stdin, stdout)
	}

}

func TestRunEnvironmentFallsBackToXTerminalEmulator(t *testing.T) {
	bin := t.TempDir()
	record := fakeTerminal(t, bin, "x-terminal-emulator")
	h := startService(t, "", Options{Environ: []string{"PATH=" + bin, "TERMINAL=no-such-term"}, KarapaceBin: "/opt/karapace"})
	b := h.build("rolling")
	r := decode[runReply](t, h.mustCall("RunEnvironment", b.EnvID))
	pid, _, _, argv := readRecord(t, record)
	if r.PID != pid || !reflect.DeepEqual(argv, []string{"-e", "/opt/karapace", "--store", h.store, "enter", b.EnvID}) {
		t.Fatalf("x-terminal-emulator: pid %d argv %q, reply %+v", pid, argv, r)
	}
}

func TestRunEnvironmentXdgTerminalExec(t *testing.T) {
	bin := t.TempDir()
	record := fakeTerminal(t, bin, "xdg-terminal-exec")
	h := startService(t, "", Options{Environ: []string{"PATH=" + bin}, KarapaceBin: "/opt/karapace"})
	b := h.build("rolling")
	r := decode[runReply](t, h.mustCall("RunEnvironment", b.EnvID))
	pid, _, _, argv := readRecord(t, record)
	if r.PID != pid || !reflect.DeepEqual(argv, []string{"/opt/karapace", "--store", h.store, "enter", b.EnvID}) {
		t.Fatalf("xdg-terminal-exec: pid %d argv %q, reply %+v", pid, argv, r)
	}
}

func TestRunEnvironmentWithoutTerminal(t *testing.T) {
	h := startService(t, "", Options{Environ: []string{"PATH=" + t.TempDir()}, KarapaceBin: "/opt/karapace"})
	b := h.build("rolling")
	msg := h.callErr(ErrNameNoTerminal, "RunEnvironment", b.EnvID)
	if !strings.Contains(msg, "no terminal emulator") || !strings.Contains(msg, "TERMINAL") {
		t.Fatalf("message %q", msg)
	}
}

func TestIdleTimeoutInProcess(t *testing.T) {
	const idle = 1500 * time.Millisecond
	h := startService(t, "", Options{IdleTimeout: idle, Backends: testBackends(mock.Options{BuildDelay: 2500 * time.Millisecond})})
	// Calls every 300 ms keep it alive well past the timeout.
	for range 8 {
		h.mustCall("ListPresets")
		time.Sleep(300 * time.Millisecond)
	}
	// A build longer than the timeout keeps it alive while it runs.
	h.build("rolling")
	select {
	case err := <-h.done:
		t.Fatalf("Serve returned while busy: %v", err)
		h.done <- err
	default:
	}
	// Silence ends it, and it gives up its name.
	start := time.Now()
	select {
	case err := <-h.done:
		h.done <- err
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("still serving after 5 s of silence")
	}
	if took := time.Since(start); took < idle/2 {
		t.Fatalf("exited %s after the last call, before the %s timeout", took, idle)
	}
	if hasOwner(t, h.c, BusName) {
		t.Fatal("name still owned after the idle exit")
	}
	if !strings.Contains(h.log.String(), "idle timeout reached") {
		t.Fatalf("log:\n%s", h.log.String())
	}
}

func TestServeEndsWhenTheBusGoes(t *testing.T) {
	addr, daemon := startBusProc(t, "", os.Environ(), nil)
	h := startService(t, addr, Options{})
	if err := daemon.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-h.done:
		h.done <- nil // the harness's own stop expects a clean end
		if err == nil || !strings.Contains(err.Error(), "lost the connection") {
			t.Fatalf("Serve after the bus died: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still running after the bus died")
	}
}

func TestShutdownCancelsRunningBuild(t *testing.T) {
	h := startService(t, "", Options{Backends: testBackends(mock.Options{BuildDelay: 5 * time.Second})})
	props := signals(t, h.c, "org.freedesktop.DBus.Properties", "PropertiesChanged")
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	errc := make(chan error, 1)
	go func() { _, err := h.call("BuildEnvironment", p); errc <- err }()
	nextSignal(t, props, 2*time.Second) // the build is running
	start := time.Now()
	h.cancel() // what SIGTERM does in main
	err := <-errc
	var de godbus.Error
	if !errors.As(err, &de) || de.Name != ErrNameCancelled {
		t.Fatalf("build during shutdown: %v, want %s", err, ErrNameCancelled)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("the build ran on for %s after the cancel", took)
	}
	h.stop()
	// The build rolled back: no environment, no environment directory.
	eng, err := core.New(context.Background(), core.Options{StoreRoot: h.store, Backends: testBackends(mock.Options{})})
	if err != nil {
		t.Fatal(err)
	}
	if envs, err := eng.List(context.Background()); err != nil || len(envs) != 0 {
		t.Fatalf("after a cancelled build: %+v, %v", envs, err)
	}
	if dirs, _ := filepath.Glob(filepath.Join(h.store, "env", "*")); len(dirs) != 0 {
		t.Fatalf("environment directories left: %v", dirs)
	}
}

func TestRunEnvironmentWithoutKarapaceBinary(t *testing.T) {
	bin := t.TempDir()
	fakeTerminal(t, bin, "x-terminal-emulator")
	h := startService(t, "", Options{Environ: []string{"PATH=" + bin}})
	b := h.build("rolling")
	msg := h.callErr(ErrNameFailed, "RunEnvironment", b.EnvID)
	if !strings.Contains(msg, "karapace binary not found") {
		t.Fatalf("message %q", msg)
	}
}
