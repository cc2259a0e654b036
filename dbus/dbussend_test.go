package dbus

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Every method and property through dbus-send, a client that is not ours.

// dbusSend runs dbus-send against the service and returns stdout, stderr and the exit
// code. args are the member then typed arguments ("string:x", "boolean:true").
func dbusSend(t *testing.T, addr, member string, args ...string) (string, string, int) {
	t.Helper()
	tool := lookTool(t, "dbus-send")
	argv := append([]string{"--bus=" + addr, "--print-reply=literal", "--reply-timeout=20000", "--dest=" + BusName, string(ObjectPath), member}, args...)
	cmd := exec.Command(tool, argv...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatalf("dbus-send: %v", err)
	}
	return strings.TrimSpace(stdout.String()), strings.TrimSpace(stderr.String()), cmd.ProcessState.ExitCode()
}

// send calls a method of the interface with dbus-send and returns its string reply.
func send(t *testing.T, addr, method string, args ...string) string {
	t.Helper()
	out, errOut, code := dbusSend(t, addr, Interface+"."+method, args...)
	if code != 0 {
		t.Fatalf("dbus-send %s %v: exit %d: %s", method, args, code, errOut)
	}
	return out
}

// sendErr calls a method that must fail with the D-Bus error name and returns the
// message dbus-send printed.
func sendErr(t *testing.T, addr, name, method string, args ...string) string {
	t.Helper()
	out, errOut, code := dbusSend(t, addr, Interface+"."+method, args...)
	prefix := "Error " + name + ": "
	if code == 0 || !strings.HasPrefix(errOut, prefix) {
		t.Fatalf("dbus-send %s %v: exit %d, stdout %q, stderr %q; want %s", method, args, code, out, errOut, prefix)
	}
	return strings.TrimPrefix(errOut, prefix)
}

func TestDBusSendEveryMethod(t *testing.T) {
	bin := t.TempDir()
	record := fakeTerminal(t, bin, "x-terminal-emulator")
	h := startService(t, "", Options{Environ: []string{"PATH=" + bin}, KarapaceBin: "/opt/karapace"})
	a := h.addr

	if got := send(t, a, "ListEnvironments"); got != "[]" {
		t.Fatalf("ListEnvironments = %q", got)
	}
	presets := decode[[]presetReply](t, send(t, a, "ListPresets"))
	if len(presets) != 6 || presets[0].Name != "dev" || presets[5].Name != "minimal" {
		t.Fatalf("ListPresets = %+v", presets)
	}
	monitor := startMonitor(t, a)
	p := writeManifest(t, t.TempDir(), "karapace.toml", "rolling")
	b := decode[built](t, send(t, a, "BuildEnvironment", "string:"+p))
	// dbus-monitor, another client that is not ours, sees the signal.
	if !waitFor(5*time.Second, func() bool {
		out := monitor.String()
		return strings.Contains(out, "member=EnvironmentChanged") && strings.Contains(out, `string "`+b.EnvID+`"`) && strings.Contains(out, `string "built"`)
	}) {
		t.Fatalf("dbus-monitor saw no EnvironmentChanged(%s, built):\n%s", b.EnvID, monitor.String())
	}
	if b.State != "built" || b.Name != "" {
		t.Fatalf("BuildEnvironment = %+v", b)
	}
	p2 := writeManifest(t, t.TempDir(), "karapace.toml", "other", "git")
	nb := decode[built](t, send(t, a, "BuildNamedEnvironment", "string:"+p2, "string:web"))
	if nb.Name != "web" || nb.State != "built" {
		t.Fatalf("BuildNamedEnvironment = %+v", nb)
	}
	if envs := decode[[]status](t, send(t, a, "ListEnvironments")); len(envs) != 2 {
		t.Fatalf("ListEnvironments = %+v", envs)
	}
	if st := decode[status](t, send(t, a, "GetEnvironmentStatus", "string:web")); st.EnvID != nb.EnvID || st.State != "built" {
		t.Fatalf("GetEnvironmentStatus = %+v", st)
	}
	if got := send(t, a, "GetEnvironmentHash", "string:"+b.ShortID); got != b.EnvID {
		t.Fatalf("GetEnvironmentHash = %q", got)
	}
	if got := send(t, a, "RenameEnvironment", "string:"+b.ShortID, "string:api"); got != `{"env_id":"`+b.EnvID+`","name":"api"}` {
		t.Fatalf("RenameEnvironment = %q", got)
	}
	r := decode[runReply](t, send(t, a, "RunEnvironment", "string:api"))
	if pid, _, _, argv := readRecord(t, record); r.PID != pid || argv[len(argv)-1] != b.EnvID {
		t.Fatalf("RunEnvironment = %+v; terminal pid %d argv %q", r, pid, argv)
	}
	if v := decode[verifyReply](t, send(t, a, "VerifyStore")); v.Checked == 0 || v.Failed != 0 {
		t.Fatalf("VerifyStore = %+v", v)
	}
	if got := send(t, a, "DestroyEnvironment", "string:web"); got != `{"destroyed":"`+nb.EnvID+`"}` {
		t.Fatalf("DestroyEnvironment = %q", got)
	}
	dry := decode[gcReply](t, send(t, a, "GarbageCollect", "boolean:true"))
	if !dry.DryRun || len(dry.OrphanedLayers)+len(dry.OrphanedObjects) == 0 {
		t.Fatalf("GarbageCollect dry run = %+v", dry)
	}
	gc := decode[gcReply](t, send(t, a, "GarbageCollect", "boolean:false"))
	if gc.DryRun || gc.RemovedLayers != len(dry.OrphanedLayers) || gc.RemovedObjects != len(dry.OrphanedObjects) {
		t.Fatalf("GarbageCollect = %+v after dry run %+v", gc, dry)
	}

	// Errors: the specific name and the message.
	if msg := sendErr(t, a, ErrNameNotFound, "GetEnvironmentStatus", "string:web"); !strings.Contains(msg, "web") {
		t.Fatalf("message %q", msg)
	}
	sendErr(t, a, ErrNameNotFound, "GetEnvironmentHash", "string:0123456789ab")
	sendErr(t, a, ErrNameNotFound, "DestroyEnvironment", "string:web")
	sendErr(t, a, ErrNameInvalidArgument, "RenameEnvironment", "string:api", "string:bad name")
	sendErr(t, a, ErrNameInvalidArgument, "GetEnvironmentStatus", "string:../x")
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("manifest_version = 9\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sendErr(t, a, ErrNameInvalidManifest, "BuildEnvironment", "string:"+bad)
	sendErr(t, a, ErrNameInvalidArgument, "BuildNamedEnvironment", "string:"+p, "string:")
	sendErr(t, a, "org.freedesktop.DBus.Error.UnknownMethod", "NoSuchMethod")
	sendErr(t, a, "org.freedesktop.DBus.Error.InvalidArgs", "GetEnvironmentStatus", "int32:7")

	// Properties.
	prop := func(args ...string) string {
		t.Helper()
		out, errOut, code := dbusSend(t, a, "org.freedesktop.DBus.Properties."+args[0], args[1:]...)
		if code != 0 {
			t.Fatalf("Properties.%s: %s", args[0], errOut)
		}
		return out
	}
	if got := prop("Get", "string:"+Interface, "string:ApiVersion"); !regexp.MustCompile(`^variant\s+uint32 1$`).MatchString(got) {
		t.Fatalf("ApiVersion = %q", got)
	}
	if got := prop("Get", "string:"+Interface, "string:StoreRoot"); !strings.HasSuffix(got, h.store) || !strings.HasPrefix(got, "variant") {
		t.Fatalf("StoreRoot = %q", got)
	}
	all := prop("GetAll", "string:"+Interface)
	for _, want := range []string{"ApiVersion", "StoreRoot", "ActiveOperations", "uint32 1", h.store} {
		if !strings.Contains(all, want) {
			t.Fatalf("GetAll lacks %q:\n%s", want, all)
		}
	}
	if _, errOut, code := dbusSend(t, a, "org.freedesktop.DBus.Properties.Set", "string:"+Interface, "string:ApiVersion", "variant:uint32:2"); code == 0 || !strings.Contains(errOut, "ReadOnly") {
		t.Fatalf("Set ApiVersion: exit %d %s", code, errOut)
	}

	// Introspection.
	x, errOut, code := dbusSend(t, a, "org.freedesktop.DBus.Introspectable.Introspect")
	if code != 0 {
		t.Fatal(errOut)
	}
	for _, want := range []string{
		`<interface name="org.karapace.Manager1">`,
		`<method name="BuildNamedEnvironment"><arg name="manifest_path" type="s" direction="in"></arg><arg name="name" type="s" direction="in"></arg><arg name="result" type="s" direction="out"></arg>`,
		`<signal name="EnvironmentChanged"><arg name="env_id" type="s"></arg><arg name="state" type="s"></arg></signal>`,
		`<property name="ApiVersion" type="u" access="read">`,
		`<interface name="org.freedesktop.DBus.Properties">`,
	} {
		if !strings.Contains(x, want) {
			t.Fatalf("introspection lacks %s:\n%s", want, x)
		}
	}
	for _, m := range methods {
		if !strings.Contains(x, `<method name="`+m.name+`">`) {
			t.Fatalf("introspection lacks method %s", m.name)
		}
	}
}

// startMonitor runs dbus-monitor on the service's signals until the test ends.
func startMonitor(t *testing.T, addr string) *syncWriter {
	t.Helper()
	tool := lookTool(t, "dbus-monitor")
	out := &syncWriter{w: &strings.Builder{}}
	cmd := exec.Command(tool, "--address", addr, "type='signal',interface='"+Interface+"'")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	// It is listening once it printed its own NameAcquired.
	if !waitFor(5*time.Second, func() bool { return strings.Contains(out.String(), "NameAcquired") }) {
		t.Fatalf("dbus-monitor did not start:\n%s", out.String())
	}
	return out
}
