package pkgmgr

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// testdata reads a recorded (or documented-format) output file, without its header of
// '#' lines.
func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	ls := strings.SplitAfter(string(b), "\n")
	for len(ls) > 0 && strings.HasPrefix(ls[0], "#") {
		ls = ls[1:]
	}
	return []byte(strings.Join(ls, ""))
}

// replay is a Runner that answers each command with the output recorded for it: the
// first step whose argv starts with the step's prefix.
type replay struct {
	steps []step
	calls [][]string
	envs  [][]string
}

type step struct {
	prefix []string
	res    Result
}

func (r *replay) Run(_ context.Context, argv []string, opts RunOptions) (Result, error) {
	r.calls = append(r.calls, argv)
	r.envs = append(r.envs, opts.Env)
	for _, s := range r.steps {
		if len(argv) >= len(s.prefix) && reflect.DeepEqual(argv[:len(s.prefix)], s.prefix) {
			return s.res, nil
		}
	}
	return Result{Stderr: []byte("replay: no recorded output for " + strings.Join(argv, " ")), ExitCode: 127}, nil
}

func newManager(t *testing.T, kind Kind, steps ...step) (*Manager, *replay) {
	t.Helper()
	r := &replay{steps: steps}
	m, err := New(kind, r, WithArch("x86_64"))
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

func wantPackageError(t *testing.T, err error, class error, name, version string) {
	t.Helper()
	var pe *PackageError
	if !errors.As(err, &pe) || !errors.Is(err, class) || pe.Name != name || pe.Version != version {
		t.Errorf("err = %v; want *PackageError %v for %q %q", err, class, name, version)
		return
	}
	if !strings.Contains(err.Error(), name) {
		t.Errorf("message %q does not name the package", err)
	}
}

func TestDetect(t *testing.T) {
	mk := func(files ...string) string {
		d := t.TempDir()
		for _, f := range files {
			p := filepath.Join(d, f)
			os.MkdirAll(filepath.Dir(p), 0o755)
			if strings.HasSuffix(f, "dnf") {
				os.Symlink("dnf-3", p) // dangling, as Fedora's is outside its root
			} else {
				os.WriteFile(p, nil, 0o755)
			}
		}
		return d
	}
	for _, tc := range []struct {
		files []string
		want  Kind
	}{
		{[]string{"usr/bin/apt-get"}, Apt}, {[]string{"usr/bin/apt"}, Apt},
		{[]string{"usr/bin/dnf"}, Dnf}, {[]string{"usr/bin/dnf5"}, Dnf},
		{[]string{"usr/bin/zypper"}, Zypper}, {[]string{"usr/bin/pacman"}, Pacman},
		{[]string{"usr/bin/pacman", "usr/bin/apt-get"}, Apt},
	} {
		got, err := Detect(mk(tc.files...))
		if err != nil || got != tc.want {
			t.Errorf("Detect(%v) = %s, %v; want %s", tc.files, got, err, tc.want)
		}
	}
	empty := mk()
	if _, err := Detect(empty); !errors.Is(err, ErrNoManager) {
		t.Errorf("empty rootfs: %v", err)
	}
	if got, _ := Detect(empty, mk("usr/bin/zypper")); got != Zypper {
		t.Errorf("second root not searched: %s", got)
	}
	if got, _ := Detect(mk("usr/bin/pacman"), mk("usr/bin/apt-get")); got != Pacman {
		t.Errorf("first root does not win: %s", got)
	}
	if _, err := New("yum", &replay{}); !errors.Is(err, ErrNoManager) {
		t.Errorf("New(yum): %v", err)
	}
}

func TestCommands(t *testing.T) {
	locked := []Package{{"curl", "7.88.1-10+deb12u15"}, {"git", "1:2.39.5-0+deb12u3"}}
	free := []Package{{Name: "curl"}}
	for _, tc := range []struct {
		kind                                        Kind
		refresh, candidate, install, free, install2 string
		installed                                   string
	}{
		{Apt, "apt-get -o APT::Sandbox::User=root -o Acquire::Retries=3 -q update",
			"apt-cache policy curl git",
			"apt-get -o APT::Sandbox::User=root -o Acquire::Retries=3 -q install -y --no-install-recommends --allow-downgrades curl=7.88.1-10+deb12u15 git=1:2.39.5-0+deb12u3",
			"apt-get -o APT::Sandbox::User=root -o Acquire::Retries=3 -q install -y --no-install-recommends --allow-downgrades curl", "",
			`dpkg-query -W -f ${Package}\t${Version}\t${db:Status-Abbrev}\n curl git`},
		{Dnf, "dnf -y makecache",
			`dnf -q repoquery --latest-limit 1 --qf %{name}\t%{evr}\t%{arch}\n curl git`,
			"dnf -y install --setopt=install_weak_deps=False curl-7.88.1-10+deb12u15 git-1:2.39.5-0+deb12u3",
			"dnf -y install --setopt=install_weak_deps=False curl", "",
			`rpm -q --qf %{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n curl git`},
		{Zypper, "zypper --non-interactive --gpg-auto-import-keys refresh",
			"zypper --non-interactive --no-refresh info --type package curl git",
			"zypper --non-interactive install --no-recommends --oldpackage curl=7.88.1-10+deb12u15 git=1:2.39.5-0+deb12u3",
			"zypper --non-interactive install --no-recommends --oldpackage curl", "",
			`rpm -q --qf %{NAME}\t%|EPOCH?{%{EPOCH}:}:{}|%{VERSION}-%{RELEASE}\n curl git`},
		{Pacman, "pacman -Sy --noconfirm", "pacman -Si curl git",
			"pacman -S --noconfirm --needed curl=7.88.1-10+deb12u15 git=1:2.39.5-0+deb12u3",
			"pacman -S --noconfirm --needed curl", "", "pacman -Q curl git"},
	} {
		m, _ := newManager(t, tc.kind)
		d := m.d
		check := func(what string, got []string, want string) {
			if strings.Join(got, " ") != want {
				t.Errorf("%s %s:\n got %s\nwant %s", tc.kind, what, strings.Join(got, " "), want)
			}
		}
		check("refresh", d.refreshCmd(), tc.refresh)
		check("candidate", d.candidateCmd([]string{"curl", "git"}), tc.candidate)
		check("locked install", d.installCmd(locked), tc.install)
		check("install", d.installCmd(free), tc.free)
		check("installed", d.installedCmd([]string{"curl", "git"}), tc.installed)
		if env := strings.Join(d.env(), " "); !strings.Contains(env, "LC_ALL=C") || !strings.Contains(env, "PATH=") {
			t.Errorf("%s env %q lacks LC_ALL=C or PATH", tc.kind, env)
		}
	}
}

func TestAptRecorded(t *testing.T) {
	ctx := context.Background()
	policy := step{[]string{"apt-cache", "policy", "curl", "git"}, Result{Stdout: testdata(t, "apt/policy-curl-git.stdout")}}
	m, r := newManager(t, Apt, policy,
		step{[]string{"apt-cache", "policy", "curl", "no-such-package-xyz"}, Result{Stdout: testdata(t, "apt/policy-curl-unknown.stdout")}},
		step{[]string{"apt-cache", "policy", "awk"}, Result{Stdout: testdata(t, "apt/policy-virtual-installed.stdout")}},
		step{[]string{"apt-cache", "policy", "libc6"}, Result{Stdout: testdata(t, "apt/policy-virtual-installed.stdout")}},
		step{[]string{"dpkg-query"}, Result{Stdout: testdata(t, "apt/dpkg-query.stdout"), ExitCode: 1}},
	)
	got, err := m.Resolve(ctx, []string{"curl", "git"})
	want := []Package{{"curl", "7.88.1-10+deb12u15"}, {"git", "1:2.39.5-0+deb12u3"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %v, %v; want %v", got, err, want)
	}
	if env := strings.Join(r.envs[0], " "); !strings.Contains(env, "DEBIAN_FRONTEND=noninteractive") {
		t.Errorf("apt env %q", env)
	}
	_, err = m.Resolve(ctx, []string{"curl", "no-such-package-xyz"})
	wantPackageError(t, err, ErrNotFound, "no-such-package-xyz", "")
	_, err = m.Resolve(ctx, []string{"awk"})
	wantPackageError(t, err, ErrNotFound, "awk", "")
	if got, err := m.Resolve(ctx, []string{"libc6"}); err != nil || got[0].Version != "2.36-9+deb12u14" {
		t.Errorf("installed package's candidate: %v %v", got, err)
	}

	inst, err := m.Installed(ctx, []string{"git", "curl"})
	if err != nil || !reflect.DeepEqual(inst, []Package{want[1], want[0]}) {
		t.Errorf("Installed = %v, %v", inst, err)
	}
	_, err = m.Installed(ctx, []string{"curl", "awk"})
	wantPackageError(t, err, ErrNotFound, "awk", "") // dpkg knows it only as "un"
}

func TestAptInstallErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		file    string
		pkgs    []Package
		class   error
		name, v string
	}{
		{"apt/install-version-missing.stderr", []Package{{"curl", "1.0-1"}}, ErrVersionUnavailable, "curl", "1.0-1"},
		{"apt/install-unknown.stderr", []Package{{"no-such-package-xyz", "1.0"}}, ErrNotFound, "no-such-package-xyz", "1.0"},
		{"apt/install-virtual.stderr", []Package{{Name: "awk"}}, ErrNotFound, "awk", ""},
	} {
		m, _ := newManager(t, Apt, step{[]string{"apt-get"}, Result{Stderr: testdata(t, tc.file), ExitCode: 100}})
		_, err := m.Install(ctx, tc.pkgs)
		wantPackageError(t, err, tc.class, tc.name, tc.v)
	}
	m, _ := newManager(t, Apt, step{[]string{"apt-get"}, Result{Stderr: []byte("E: Sub-process /usr/bin/dpkg returned an error code (1)\n"), ExitCode: 100}})
	_, err := m.Install(ctx, []Package{{"curl", "1"}})
	var ce *CommandError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCommand) || ce.ExitCode != 100 || !strings.Contains(err.Error(), "dpkg returned") {
		t.Errorf("other failure: %v", err)
	}
}

func TestAptRefresh(t *testing.T) {
	m, _ := newManager(t, Apt, step{[]string{"apt-get"}, Result{Stdout: testdata(t, "apt/update.stdout")}})
	if err := m.Refresh(context.Background()); err != nil {
		t.Errorf("good update: %v", err)
	}
	// apt-get update exits 0 when the mirror is unreachable; the warning is the signal.
	m, _ = newManager(t, Apt, step{[]string{"apt-get"}, Result{Stdout: testdata(t, "apt/update-unreachable.stdout"), Stderr: testdata(t, "apt/update-unreachable.stderr")}})
	if err := m.Refresh(context.Background()); !errors.Is(err, ErrCommand) || !strings.Contains(err.Error(), "127.0.0.1:9") {
		t.Errorf("unreachable mirror: %v", err)
	}
	m, _ = newManager(t, Apt, step{[]string{"apt-get"}, Result{Stderr: []byte("E: boom\n"), ExitCode: 100}})
	if err := m.Refresh(context.Background()); !errors.Is(err, ErrCommand) {
		t.Errorf("failing update: %v", err)
	}
}

func TestInstallChecksInstalledVersions(t *testing.T) {
	ctx := context.Background()
	m, r := newManager(t, Apt, step{[]string{"apt-get"}, Result{}}, step{[]string{"dpkg-query"}, Result{Stdout: testdata(t, "apt/dpkg-query.stdout")}})
	got, err := m.Install(ctx, []Package{{"curl", "7.88.1-10+deb12u15"}, {"git", "1:2.39.5-0+deb12u3"}})
	if err != nil || len(got) != 2 || len(r.calls) != 2 {
		t.Fatalf("Install = %v, %v after %d calls", got, err, len(r.calls))
	}
	// A package manager that installed something else than asked is caught.
	_, err = m.Install(ctx, []Package{{"curl", "7.88.1-10+deb12u14"}})
	wantPackageError(t, err, ErrVersionUnavailable, "curl", "7.88.1-10+deb12u14")
	if got, err := m.Install(ctx, nil); got != nil || err != nil {
		t.Errorf("empty install: %v %v", got, err)
	}
}

func TestInvalidNamesNeverReachTheTool(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []Kind{Apt, Dnf, Zypper, Pacman} {
		m, r := newManager(t, kind)
		for _, bad := range []string{"", "-o", "--help", "cur*", "a b", "curl=1", "curl>=1", ".hidden", "x;rm", "a:b:c", "a\nb", "ü"} {
			if _, err := m.Resolve(ctx, []string{"curl", bad}); !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s Resolve(%q) = %v", kind, bad, err)
			}
			if _, err := m.Install(ctx, []Package{{Name: bad}}); !errors.Is(err, ErrInvalidName) {
				t.Errorf("%s Install(%q) = %v", kind, bad, err)
			}
		}
		if _, err := m.Install(ctx, []Package{{"curl", "1.0 --force"}}); !errors.Is(err, ErrInvalidName) {
			t.Errorf("%s bad version: %v", kind, err)
		}
		if len(r.calls) != 0 {
			t.Errorf("%s: invalid names reached the tool: %v", kind, r.calls)
		}
	}
	for _, good := range []string{"curl", "libstdc++6", "python3.11", "g++", "libc6:amd64", "perl-Text-CSV_XS", "ca-certificates", "R-base", "lib32-glibc", "texlive-@core"} {
		if !validName(good) {
			t.Errorf("validName(%q) = false", good)
		}
	}
}

func TestDnfDocumentedFormat(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t, Dnf,
		step{[]string{"dnf", "-q", "repoquery"}, Result{Stdout: testdata(t, "dnf/repoquery.stdout")}},
		step{[]string{"rpm", "-q"}, Result{Stdout: testdata(t, "dnf/rpm-q.stdout"), ExitCode: 1}},
	)
	got, err := m.Resolve(ctx, []string{"glibc", "vim-enhanced", "curl"})
	want := []Package{{"glibc", "2.40-17.fc41"}, {"vim-enhanced", "2:9.1.919-1.fc41"}, {"curl", "8.9.1-3.fc41"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Resolve = %v, %v; want %v", got, err, want)
	}
	_, err = m.Resolve(ctx, []string{"curl", "nosuch"})
	wantPackageError(t, err, ErrNotFound, "nosuch", "")
	inst, err := m.Installed(ctx, []string{"vim-enhanced", "curl"})
	if err != nil || !reflect.DeepEqual(inst, []Package{want[1], want[2]}) {
		t.Errorf("Installed = %v, %v", inst, err)
	}
	_, err = m.Installed(ctx, []string{"nosuch"})
	wantPackageError(t, err, ErrNotFound, "nosuch", "")

	m, _ = newManager(t, Dnf, step{[]string{"dnf", "-y", "install"}, Result{Stderr: testdata(t, "dnf/install-version-missing.stderr"), ExitCode: 1}})
	_, err = m.Install(ctx, []Package{{"curl", "8.0.0-1.fc41"}})
	wantPackageError(t, err, ErrVersionUnavailable, "curl", "8.0.0-1.fc41")
	m, _ = newManager(t, Dnf, step{[]string{"dnf", "-y", "install"}, Result{Stderr: testdata(t, "dnf/install-unknown-dnf5.stderr"), ExitCode: 1}})
	_, err = m.Install(ctx, []Package{{Name: "nosuch"}})
	wantPackageError(t, err, ErrNotFound, "nosuch", "")
}

func TestZypperDocumentedFormat(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t, Zypper,
		step{[]string{"zypper", "--non-interactive", "--no-refresh", "info"}, Result{Stdout: testdata(t, "zypper/info.stdout"), ExitCode: 104}},
	)
	got, err := m.Resolve(ctx, []string{"curl"})
	if err != nil || !reflect.DeepEqual(got, []Package{{"curl", "8.11.1-1.1"}}) {
		t.Errorf("Resolve = %v, %v", got, err)
	}
	_, err = m.Resolve(ctx, []string{"curl", "nosuch"})
	wantPackageError(t, err, ErrNotFound, "nosuch", "")
	m, _ = newManager(t, Zypper, step{[]string{"zypper"}, Result{Stdout: testdata(t, "zypper/install-version-missing.stdout"), ExitCode: 104}})
	_, err = m.Install(ctx, []Package{{"curl", "1.0-1"}})
	wantPackageError(t, err, ErrVersionUnavailable, "curl", "1.0-1")
}

func TestPacmanDocumentedFormat(t *testing.T) {
	ctx := context.Background()
	m, _ := newManager(t, Pacman,
		step{[]string{"pacman", "-Si"}, Result{Stdout: testdata(t, "pacman/si.stdout"), Stderr: testdata(t, "pacman/si-unknown.stderr"), ExitCode: 1}},
		step{[]string{"pacman", "-Q"}, Result{Stdout: testdata(t, "pacman/q.stdout"), ExitCode: 1}},
	)
	got, err := m.Resolve(ctx, []string{"curl"})
	if err != nil || !reflect.DeepEqual(got, []Package{{"curl", "8.11.1-1"}}) {
		t.Errorf("Resolve = %v, %v (the first repository must win)", got, err)
	}
	_, err = m.Resolve(ctx, []string{"curl", "nosuch"})
	wantPackageError(t, err, ErrNotFound, "nosuch", "")
	if inst, err := m.Installed(ctx, []string{"curl"}); err != nil || inst[0].Version != "8.11.1-1" {
		t.Errorf("Installed = %v, %v", inst, err)
	}
	_, err = m.Installed(ctx, []string{"curl", "nosuch"})
	wantPackageError(t, err, ErrNotFound, "nosuch", "")
	m, _ = newManager(t, Pacman, step{[]string{"pacman", "-S"}, Result{Stderr: testdata(t, "pacman/install-version-missing.stderr"), ExitCode: 1}})
	_, err = m.Install(ctx, []Package{{"curl", "8.0.0-1"}})
	wantPackageError(t, err, ErrVersionUnavailable, "curl", "8.0.0-1")
	// A -Si failure that is not about a missing name is a command error.
	m, _ = newManager(t, Pacman, step{[]string{"pacman", "-Si"}, Result{Stderr: []byte("error: failed to initialize alpm library\n"), ExitCode: 1}})
	if _, err := m.Resolve(ctx, []string{"curl"}); !errors.Is(err, ErrCommand) {
		t.Errorf("alpm failure: %v", err)
	}
}

func TestOpen(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/pacman"), nil, 0o755)
	m, err := Open(&replay{}, []string{root})
	if err != nil || m.Kind() != Pacman {
		t.Errorf("Open = %v, %v", m, err)
	}
	if _, err := Open(&replay{}, []string{t.TempDir()}); !errors.Is(err, ErrNoManager) {
		t.Errorf("Open(empty) = %v", err)
	}
}

func TestCleanCommands(t *testing.T) {
	for kind, want := range map[Kind]string{
		Apt:    "apt-get -o APT::Sandbox::User=root -o Acquire::Retries=3 -q clean",
		Dnf:    "dnf -y clean packages",
		Zypper: "zypper --non-interactive clean",
		Pacman: "/bin/sh -c rm -rf /var/cache/pacman/pkg/*",
	} {
		m, _ := newManager(t, kind)
		if got := strings.Join(m.d.cleanCmd(), " "); got != want {
			t.Errorf("%s clean:\n got %s\nwant %s", kind, got, want)
		}
	}
}
