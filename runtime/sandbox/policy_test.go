package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// aliceHost is a typical desktop user with a project, a few symlinks and devices.
func aliceHost() Host {
	f := newFakeFS().
		add("/home/alice/proj/src", Dir).
		add("/home/alice/notes.txt", File).
		add("/tmp/x", Dir).
		add("/tmpfoo", Dir).
		add("/homeevil/x", Dir).
		add("/etc/shadow", File).
		add("/etc/passwd", File).
		add("/dev/sda", Device).
		link("/home/alice/link", "/etc").
		link("/home/alice/rel", "../../etc").
		link("/home/alice/ok", "proj/src").
		link("/home/alice/devlink", "/dev/sda").
		link("/tmp/escape", "/var")
	f.add("/var/lib", Dir)
	return Host{
		Env:  map[string]string{},
		UID:  1000,
		GID:  1000,
		User: "alice",
		Home: "/home/alice",
		Cwd:  "/home/alice",
		FS:   f,
	}
}

func TestCheckMountPolicy(t *testing.T) {
	h := aliceHost()
	const dir = "/home/alice/proj"
	tests := []struct {
		name, host, container string
		want                  string // resolved source when allowed
		err                   error
		msg                   string // substring of the error
	}{
		{"absolute under home", "/home/alice/proj/src", "/src", "/home/alice/proj/src", nil, ""},
		{"tmp", "/tmp/x", "/x", "/tmp/x", nil, ""},
		{"home root itself", "/home", "/h", "/home", nil, ""},
		{"homeevil is not /home", "/homeevil/x", "/x", "", runtime.ErrMountDenied,
			`mount '/homeevil/x' (resolved: /homeevil/x) is not under any allowed prefix: ["/home", "/tmp", "/home/alice"]`},
		{"tmpfoo is not /tmp", "/tmpfoo", "/x", "", runtime.ErrMountDenied, "(resolved: /tmpfoo)"},
		{"dotdot out of home", "/home/../etc/passwd", "/x", "", runtime.ErrMountDenied, "(resolved: /etc/passwd)"},
		{"etc shadow", "/etc/shadow", "/x", "", runtime.ErrMountDenied, "not under any allowed prefix"},
		{"root", "/", "/x", "", runtime.ErrMountDenied, "(resolved: /)"},
		{"proc self root", "/proc/self/root", "/x", "", runtime.ErrMountDenied, "not under"},
		{"tilde", "~/proj", "/p", "/home/alice/proj", nil, ""},
		{"tilde alone", "~", "/p", "/home/alice", nil, ""},
		{"tilde escape", "~/../../etc", "/p", "", runtime.ErrMountDenied, "(resolved: /etc)"},
		{"tilde other user", "~bob/x", "/p", "", runtime.ErrMountDenied, "only ~ and ~/"},
		{"dot relative to manifest dir", "./src", "/src", "/home/alice/proj/src", nil, ""},
		{"bare relative", "src", "/src", "/home/alice/proj/src", nil, ""},
		{"dot", ".", "/p", "/home/alice/proj", nil, ""},
		{"relative escape", "../../../etc", "/e", "", runtime.ErrMountDenied, "(resolved: /etc)"},
		{"symlink out of home", "/home/alice/link", "/e", "", runtime.ErrMountDenied, "(resolved: /etc)"},
		{"relative symlink out of home", "~/rel/shadow", "/e", "", runtime.ErrMountDenied, "(resolved: /etc/shadow)"},
		{"symlink out of tmp", "/tmp/escape/lib", "/e", "", runtime.ErrMountDenied, "(resolved: /var/lib)"},
		{"symlink inside home", "~/ok", "/e", "/home/alice/proj/src", nil, ""},
		{"not yet existing path", "~/new/dir", "/n", "/home/alice/new/dir", nil, ""},
		{"device path", "/dev/sda", "/d", "", runtime.ErrDeviceDenied, "exposes a host device"},
		{"symlink to device", "~/devlink", "/d", "", runtime.ErrDeviceDenied, "(resolved: /dev/sda)"},
		{"container relative", "~/proj", "work", "", runtime.ErrMountDenied, "must be absolute"},
		{"container dotdot", "~/proj", "/work/../etc", "", runtime.ErrMountDenied, "must not contain '..'"},
		{"container unclean", "~/proj", "/work/", "", runtime.ErrMountDenied, "not clean"},
		{"container double slash", "~/proj", "//work", "", runtime.ErrMountDenied, "not clean"},
		{"container root", "~/proj", "/", "", runtime.ErrMountDenied, "replace the environment's root"},
		{"container proc", "~/proj", "/proc/sys", "", runtime.ErrMountDenied, "inside /proc"},
		{"container sys", "~/proj", "/sys", "", runtime.ErrMountDenied, "inside /sys"},
		{"container dev", "~/proj", "/dev/shm", "", runtime.ErrMountDenied, "inside /dev"},
		{"container procfoo is fine", "~/proj", "/procfoo", "/home/alice/proj", nil, ""},
		{"container newline", "~/proj", "/a\nb", "", runtime.ErrMountDenied, "control character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := schema.Mount{Label: "m", HostPath: tc.host, ContainerPath: tc.container}
			r, err := CheckMount(m, dir, h)
			if tc.err == nil {
				if err != nil {
					t.Fatalf("CheckMount(%q): %v", tc.host, err)
				}
				if r.Source != tc.want {
					t.Fatalf("source = %q, want %q", r.Source, tc.want)
				}
				return
			}
			if !errors.Is(err, tc.err) {
				t.Fatalf("CheckMount(%q, %q) = %v, want %v", tc.host, tc.container, err, tc.err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %q does not mention %q", err, tc.msg)
			}
		})
	}
}

func TestRelativeMountWithoutManifestDirUsesCwd(t *testing.T) {
	h := aliceHost()
	h.Cwd = "/home/alice/proj"
	r, err := CheckMount(schema.Mount{Label: "s", HostPath: "src", ContainerPath: "/s"}, "", h)
	if err != nil || r.Source != "/home/alice/proj/src" {
		t.Fatalf("got %q, %v", r.Source, err)
	}
	h.Cwd = ""
	if _, err := CheckMount(schema.Mount{Label: "s", HostPath: "src", ContainerPath: "/s"}, "", h); !errors.Is(err, runtime.ErrMountDenied) {
		t.Fatalf("relative path with no base: %v", err)
	}
}

// On Fedora Atomic /home is a symlink to /var/home and $HOME is /var/home/<user>.
func TestMountRootsFollowSymlinkedHome(t *testing.T) {
	f := newFakeFS().add("/var/home/bob/code", Dir).add("/var/log", Dir).add("/var/homeevil", Dir).link("/home", "/var/home")
	h := Host{Home: "/var/home/bob", User: "bob", FS: f}
	if got, want := strings.Join(MountRoots(h), " "), "/home /var/home /tmp /var/home/bob"; got != want {
		t.Fatalf("MountRoots = %q, want %q", got, want)
	}
	for path, ok := range map[string]bool{
		"/var/home/bob/code": true, "/home/bob/code": true, "/var/log": false, "/var/homeevil": false,
	} {
		_, err := CheckMount(schema.Mount{Label: "c", HostPath: path, ContainerPath: "/c"}, "", h)
		if (err == nil) != ok {
			t.Errorf("CheckMount(%s) = %v, want allowed=%v", path, err, ok)
		}
	}
}

// The same rule against the real filesystem: a symlink in a temp dir under /tmp that
// points at /etc is refused.
func TestSymlinkEscapeOnRealFS(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/etc", filepath.Join(dir, "etc")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "ok"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := Host{Home: "/nonexistent-home", FS: OSFS{}}
	ok := filepath.Join(dir, "ok")
	real, err := filepath.EvalSymlinks(ok)
	if err != nil {
		t.Fatal(err)
	}
	if !under(real, "/tmp") && !under(real, "/home") {
		t.Skipf("temp dir %s is not under /tmp or /home", real)
	}
	if _, err := CheckMount(schema.Mount{Label: "ok", HostPath: ok, ContainerPath: "/ok"}, "", h); err != nil {
		t.Fatalf("plain dir: %v", err)
	}
	_, err = CheckMount(schema.Mount{Label: "e", HostPath: filepath.Join(dir, "etc"), ContainerPath: "/e"}, "", h)
	if !errors.Is(err, runtime.ErrMountDenied) || !strings.Contains(err.Error(), "(resolved: /etc)") {
		t.Fatalf("symlink to /etc: %v", err)
	}
}

func TestEnvPolicy(t *testing.T) {
	tests := []struct {
		key  string
		pass bool
	}{
		{"TERM", true}, {"COLORTERM", true}, {"LANG", true}, {"LANGUAGE", true},
		{"LC_ALL", true}, {"LC_CTYPE", true}, {"TZ", true}, {"EDITOR", true}, {"VISUAL", true},
		{"SSH_AUTH_SOCK", false}, {"GPG_AGENT_INFO", false}, {"AWS_SECRET_ACCESS_KEY", false},
		{"AWS_PROFILE", false}, {"DOCKER_HOST", false}, {"GITHUB_TOKEN", false},
		{"LC_FOO_TOKEN", false},  // allowed by LC_*, denied by *_TOKEN: deny wins
		{"LC_PASSWORD_X", false}, // denied by *PASSWORD*
		{"PATH", false},          // the plan sets its own
		{"HOME", false}, {"LD_PRELOAD", false}, {"DISPLAY", false}, {"SHELL", false},
		{"LC_", true}, {"", false}, {"1TERM", false}, {"LC_A-B", false},
	}
	for _, tc := range tests {
		if got := EnvAllowed(tc.key); got != tc.pass {
			t.Errorf("EnvAllowed(%q) = %v, want %v", tc.key, got, tc.pass)
		}
	}
	got := FilterEnv(map[string]string{"TERM": "xterm", "LANG": "C\x00", "SSH_AUTH_SOCK": "/s", "LC_ALL": "C.UTF-8"})
	if len(got) != 2 || got["TERM"] != "xterm" || got["LC_ALL"] != "C.UTF-8" {
		t.Fatalf("FilterEnv = %v", got)
	}
}

// The deny list holds whatever the case of the name: an allow rule (LC_*) never lets a
// lower- or mixed-case credential through, and the plan's own variables are refused in
// any case too.
func TestEnvDeniedAnyCase(t *testing.T) {
	tests := []struct {
		key    string
		denied bool
	}{
		{"LC_Password", true}, {"LC_mypassword", true}, {"LC_PASSWORD", true}, {"lc_password", true},
		{"my_token", true}, {"My_Token", true}, {"MY_TOKEN", true}, {"LC_my_token", true},
		{"Aws_Secret_Access_Key", true}, {"aws_profile", true}, {"AWS_", true},
		{"ssh_auth_sock", true}, {"Ssh_Agent_Pid", true}, {"docker_host", true},
		{"github_token", true}, {"krb5ccname", true}, {"LC_db_secret", true},
		{"LC_x_Secret_y", true}, {"openai_api_key", true}, {"LC_Api_Key", true}, {"LC_APIKEY", false}, // *_API_KEY needs the '_'
		{"PasswordStore", true}, {"xPASSWORDx", true},
		// Not on the list in any case.
		{"LC_ALL", false}, {"lc_all", false}, {"TERM", false}, {"LC_TOK", false}, {"TOKEN", false},
		{"SECRETS", false}, {"AWS", false}, {"", false},
		// Only ASCII letters fold: U+017F (long s) is not 'S', U+0131 (dotless i) not 'I'.
		{"LC_PAſSWORD", false}, {"LC_X_APı_KEY", false}, {"LC_X_API_KEY", true},
	}
	for _, tc := range tests {
		if got := EnvDenied(tc.key); got != tc.denied {
			t.Errorf("EnvDenied(%q) = %v, want %v", tc.key, got, tc.denied)
		}
	}
	// Every pattern, upper-, lower- and mixed-case, matches itself spelled out.
	for _, p := range DeniedEnv() {
		k := strings.ReplaceAll(p, "*", "X")
		for _, v := range []string{k, strings.ToLower(k), mixedCase(k)} {
			if !EnvDenied(v) {
				t.Errorf("EnvDenied(%q) = false (pattern %s)", v, p)
			}
		}
	}
}

func mixedCase(s string) string {
	b := []byte(strings.ToLower(s))
	for i := 0; i < len(b); i += 2 {
		b[i] = strings.ToUpper(string(b[i]))[0]
	}
	return string(b)
}

// LC_* admits mixed-case names, so the deny list must catch them there; the allow list
// itself stays case-sensitive.
func TestEnvAllowedDenyWinsAnyCase(t *testing.T) {
	tests := []struct {
		key  string
		pass bool
	}{
		{"LC_Password", false}, {"LC_mypassword", false}, {"LC_my_token", false},
		{"LC_Foo_Secret", false}, {"LC_aws_key", true}, // AWS_* is a prefix rule, LC_aws_key does not start with it
		{"LC_Messages", true}, {"lc_all", false}, {"term", false}, {"my_token", false},
	}
	for _, tc := range tests {
		if got := EnvAllowed(tc.key); got != tc.pass {
			t.Errorf("EnvAllowed(%q) = %v, want %v", tc.key, got, tc.pass)
		}
	}
	got := FilterEnv(map[string]string{"LC_Password": "p", "LC_mypassword": "p", "LC_TIME": "C", "Aws_Secret_Access_Key": "k"})
	if len(got) != 1 || got["LC_TIME"] != "C" {
		t.Fatalf("FilterEnv = %v", got)
	}
}

func TestCheckLimits(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	tests := []struct {
		cpu, mem *uint64
		want     Limits
		ok       bool
	}{
		{nil, nil, Limits{}, true},
		{u(1), nil, Limits{}, false},
		{u(2), nil, Limits{CPUShares: 2}, true},
		{u(1024), u(512), Limits{CPUShares: 1024, MemoryBytes: 512 << 20}, true},
		{u(262144), nil, Limits{CPUShares: 262144}, true},
		{u(262145), nil, Limits{}, false},
		{u(0), nil, Limits{}, false},
		{nil, u(0), Limits{}, false},
		{nil, u(1), Limits{MemoryBytes: 1 << 20}, true},
		{nil, u(MaxMemoryMB + 1), Limits{}, false},
		{nil, u(^uint64(0)), Limits{}, false},
	}
	for _, tc := range tests {
		l, err := CheckLimits(schema.Normalized{CPUShares: tc.cpu, MemoryLimitMB: tc.mem})
		if tc.ok != (err == nil) || l != tc.want {
			t.Errorf("CheckLimits(%v, %v) = %+v, %v", tc.cpu, tc.mem, l, err)
		}
		if err != nil && !errors.Is(err, runtime.ErrPolicy) {
			t.Errorf("error %v is not ErrPolicy", err)
		}
	}
}

func TestCheckManifest(t *testing.T) {
	h := aliceHost()
	n := schema.Normalized{Mounts: []schema.Mount{
		{Label: "a", HostPath: "./src", ContainerPath: "/src"},
		{Label: "b", HostPath: "/homeevil/x", ContainerPath: "/x"},
	}}
	err := CheckManifest(n, "/home/alice/proj", h)
	if !errors.Is(err, runtime.ErrMountDenied) {
		t.Fatalf("CheckManifest = %v", err)
	}
	n.Mounts = n.Mounts[:1]
	if err := CheckManifest(n, "/home/alice/proj", h); err != nil {
		t.Fatal(err)
	}
}
