package dbus

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// iniFile parses a desktop-entry style file (the D-Bus .service and systemd unit
// syntax) into section -> key -> values.
func iniFile(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value in a section: %q", path, n, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

func TestDBusServiceFile(t *testing.T) {
	f := iniFile(t, "../data/dbus/org.karapace.Manager1.service")
	s := f["D-BUS Service"]
	want := map[string]string{
		"Name":           BusName,
		"Exec":           "@bindir@/karapace-dbus",
		"SystemdService": "karapace-dbus.service",
	}
	for k, v := range want {
		if len(s[k]) != 1 || s[k][0] != v {
			t.Errorf("%s = %q, want %q", k, s[k], v)
		}
	}
	if len(f) != 1 || len(s) != len(want) {
		t.Errorf("unexpected content: %v", f)
	}
	if _, err := os.Stat(filepath.Join("../data/systemd", s["SystemdService"][0])); err != nil {
		t.Errorf("SystemdService names a unit we do not ship: %v", err)
	}
}

func TestSystemdUnitFile(t *testing.T) {
	f := iniFile(t, "../data/systemd/karapace-dbus.service")
	svc := f["Service"]
	for k, v := range map[string]string{
		"Type":            "dbus",
		"BusName":         BusName,
		"ExecStart":       "@bindir@/karapace-dbus",
		"NoNewPrivileges": "yes",
		"ProtectSystem":   "strict",
		"ReadWritePaths":  "%h",
		"PrivateTmp":      "yes",
		"Restart":         "on-failure",
	} {
		if len(svc[k]) != 1 || svc[k][0] != v {
			t.Errorf("[Service] %s = %q, want %q", k, svc[k], v)
		}
	}
	// The unit's stop timeout covers the service's own shutdown grace.
	if len(svc["TimeoutStopSec"]) != 1 || svc["TimeoutStopSec"][0] != "15" {
		t.Errorf("TimeoutStopSec = %q", svc["TimeoutStopSec"])
	}
	if doc := f["Unit"]["Documentation"]; len(doc) != 1 || !strings.HasSuffix(doc[0], "/docs/dbus.md") {
		t.Errorf("Documentation = %q", doc)
	}
	if w := f["Install"]["WantedBy"]; len(w) != 1 || w[0] != "default.target" {
		t.Errorf("WantedBy = %q", w)
	}
}

// TestSystemdUnitVerifies has systemd itself check the unit (as a user unit, with
// ExecStart pointing at the built binary): no unknown keys, no bad values.
func TestSystemdUnitVerifies(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		need(t, "systemd-analyze (Debian package systemd)")
	}
	bin := serviceBinary(t)
	dir := t.TempDir()
	unit := filepath.Join(dir, "karapace-dbus.service")
	installData(t, "../data/systemd/karapace-dbus.service", unit, bin)
	runtimeDir := filepath.Join(dir, "run")
	if err := os.Mkdir(runtimeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(tool, "verify", "--user", "--man=no", unit)
	cmd.Env = append(os.Environ(), "XDG_RUNTIME_DIR="+runtimeDir, "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// A broken copy is caught, so the check above means something.
	b, _ := os.ReadFile(unit)
	if err := os.WriteFile(unit, []byte(strings.Replace(string(b), "PrivateTmp=yes", "PrivateTmp=perhaps", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := cmd2(tool, unit, cmd.Env); !strings.Contains(out, "perhaps") {
		t.Fatalf("systemd-analyze accepted PrivateTmp=perhaps: %s", out)
	}
}

func cmd2(tool, unit string, env []string) (string, error) {
	c := exec.Command(tool, "verify", "--user", "--man=no", unit)
	c.Env = env
	out, err := c.CombinedOutput()
	return string(out), err
}
