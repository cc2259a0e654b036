package pkgmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// Error classes; inspect with errors.Is. Errors about one package are *PackageError.
var (
	// ErrNoManager: the image has none of apt, dnf, zypper, pacman.
	ErrNoManager = errors.New("no supported package manager found in the image (supported: apt, dnf, zypper, pacman)")
	// ErrNotFound: no package of that name exists in the image's repositories (or it is
	// only a virtual name with no installation candidate).
	ErrNotFound = errors.New("package not found")
	// ErrVersionUnavailable: the repositories no longer offer the locked version.
	ErrVersionUnavailable = errors.New("locked package version not available")
	// ErrInvalidName: the name cannot be a package name (and is never passed on).
	ErrInvalidName = errors.New("invalid package name")
	// ErrCommand: the package manager failed for another reason (network, repository
	// metadata, dependency conflict, a maintainer script).
	ErrCommand = errors.New("package manager command failed")
)

// PackageError is an error about one named package.
type PackageError struct {
	Manager Kind
	Name    string
	Version string // the requested version, when one was
	Err     error  // ErrNotFound, ErrVersionUnavailable or ErrInvalidName
	Detail  string // the package manager's own words
}

func (e *PackageError) Error() string {
	what := fmt.Sprintf("%q", e.Name)
	if e.Version != "" {
		what = fmt.Sprintf("%q version %q", e.Name, e.Version)
	}
	msg := fmt.Sprintf("%s: %v: %s", e.Manager, e.Err, what)
	if e.Detail != "" {
		msg += " (" + e.Detail + ")"
	}
	return msg
}

func (e *PackageError) Unwrap() error { return e.Err }

// CommandError is a failed package manager command, with the end of its output.
type CommandError struct {
	Argv     []string
	ExitCode int
	Output   string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%v: %s exited with %d: %s", ErrCommand, strings.Join(e.Argv, " "), e.ExitCode, e.Output)
}

func (e *CommandError) Unwrap() error { return ErrCommand }

// Kind names a package manager.
type Kind string

const (
	Apt    Kind = "apt"
	Dnf    Kind = "dnf"
	Zypper Kind = "zypper"
	Pacman Kind = "pacman"
)

// markers are checked in order; the first file that exists decides.
var markers = []struct {
	path string
	kind Kind
}{
	{"usr/bin/apt-get", Apt}, {"usr/bin/apt", Apt},
	{"usr/bin/dnf", Dnf}, {"usr/bin/dnf5", Dnf},
	{"usr/bin/zypper", Zypper},
	{"usr/bin/pacman", Pacman},
}

// Detect finds the package manager of a root file system. With several roots (an
// environment's merged view first, then the image's rootfs) the first root with a
// marker wins. Markers may be symlinks (Fedora's dnf is one); they are not followed.
func Detect(roots ...string) (Kind, error) {
	for _, root := range roots {
		for _, m := range markers {
			if _, err := os.Lstat(filepath.Join(root, m.path)); err == nil {
				return m.kind, nil
			}
		}
	}
	return "", fmt.Errorf("%w: looked in %s", ErrNoManager, strings.Join(roots, ", "))
}

// Runner runs one command inside the image and captures its output. A non-zero exit is
// not an error of Run: it is reported in Result.ExitCode. Run returns an error only when
// the command could not be run at all.
type Runner interface {
	Run(ctx context.Context, argv []string, opts RunOptions) (Result, error)
}

// RunOptions are the per-command settings.
type RunOptions struct {
	// Env is the command's complete environment (KEY=VALUE); nothing else is inherited.
	Env []string
	// Log, when set, also receives the command's stdout and stderr as they come, for
	// build logs. Result still holds them.
	Log io.Writer
}

// Result is a finished command.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Package is a name and an exact version in the package manager's own syntax
// (Debian: [epoch:]upstream[-revision]; RPM: [epoch:]version-release; pacman:
// [epoch:]pkgver-pkgrel).
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Manager drives one image's package manager through a Runner.
type Manager struct {
	kind Kind
	d    dialect
	run  Runner
	log  *slog.Logger
	out  io.Writer
}

// Option configures a Manager.
type Option func(*Manager)

// WithLogger sets the logger for debug messages (default: discard).
func WithLogger(l *slog.Logger) Option { return func(m *Manager) { m.log = l } }

// WithOutput copies every command's output to w as it runs (a build log or the terminal).
func WithOutput(w io.Writer) Option { return func(m *Manager) { m.out = w } }

// WithArch sets the RPM architecture preferred when a repository offers a name for
// several (default: the host's, e.g. x86_64; noarch is always accepted).
func WithArch(rpmArch string) Option {
	return func(m *Manager) {
		if r, ok := m.d.(*rpmDialect); ok {
			r.arch = rpmArch
		}
	}
}

// New returns a Manager of kind that runs its commands through r.
func New(kind Kind, r Runner, opts ...Option) (*Manager, error) {
	var d dialect
	switch kind {
	case Apt:
		d = aptDialect{}
	case Dnf:
		d = &rpmDialect{kind: Dnf, arch: hostRPMArch()}
	case Zypper:
		d = &rpmDialect{kind: Zypper, arch: hostRPMArch()}
	case Pacman:
		d = pacmanDialect{}
	default:
		return nil, fmt.Errorf("%w: unknown kind %q", ErrNoManager, kind)
	}
	m := &Manager{kind: kind, d: d, run: r, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(m)
	}
	return m, nil
}

// Kind returns the package manager's kind.
func (m *Manager) Kind() Kind { return m.kind }

// dialect is what differs between package managers: their commands and how to read
// their output. Command builders are pure; parsers take recorded output.
type dialect interface {
	env() []string
	refreshCmd() []string
	// checkRefresh looks at a refresh that exited 0 for failures the tool reports
	// only as warnings.
	checkRefresh(r Result) error
	candidateCmd(names []string) []string
	parseCandidates(names []string, r Result) ([]Package, error)
	installCmd(pkgs []Package) []string
	// installError explains a failed install in terms of one package when it can.
	installError(pkgs []Package, r Result) error
	installedCmd(names []string) []string
	parseInstalled(r Result) map[string]string
	// cleanCmd removes the downloaded package files, keeping the package index.
	cleanCmd() []string
}

// Refresh updates the package index (apt-get update, dnf makecache, zypper refresh,
// pacman -Sy).
func (m *Manager) Refresh(ctx context.Context) error {
	argv := m.d.refreshCmd()
	r, err := m.exec(ctx, argv)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return commandError(argv, r)
	}
	return m.d.checkRefresh(r)
}

// Resolve returns the exact version the package manager would install for each name,
// in the order given, without installing anything. Refresh first. A name with no
// candidate is a *PackageError wrapping ErrNotFound.
func (m *Manager) Resolve(ctx context.Context, names []string) ([]Package, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if err := m.checkNames(names); err != nil {
		return nil, err
	}
	argv := m.d.candidateCmd(names)
	r, err := m.exec(ctx, argv)
	if err != nil {
		return nil, err
	}
	return m.d.parseCandidates(names, r)
}

// Install installs exactly the given versions (a Package with an empty Version gets
// the current candidate), then reads back the installed versions and returns them. A
// version the repositories no longer have is a *PackageError wrapping
// ErrVersionUnavailable.
func (m *Manager) Install(ctx context.Context, pkgs []Package) ([]Package, error) {
	if len(pkgs) == 0 {
		return nil, nil
	}
	names := make([]string, len(pkgs))
	for i, p := range pkgs {
		names[i] = p.Name
		if p.Version != "" && !validVersion(p.Version) {
			return nil, &PackageError{Manager: m.kind, Name: p.Name, Version: p.Version, Err: ErrInvalidName, Detail: "malformed version"}
		}
	}
	if err := m.checkNames(names); err != nil {
		return nil, err
	}
	argv := m.d.installCmd(pkgs)
	r, err := m.exec(ctx, argv)
	if err != nil {
		return nil, err
	}
	if r.ExitCode != 0 {
		return nil, m.d.installError(pkgs, r)
	}
	got, err := m.Installed(ctx, names)
	if err != nil {
		return nil, err
	}
	for i, p := range pkgs {
		if p.Version != "" && got[i].Version != p.Version {
			return nil, &PackageError{Manager: m.kind, Name: p.Name, Version: p.Version, Err: ErrVersionUnavailable,
				Detail: fmt.Sprintf("installed %q instead", got[i].Version)}
		}
	}
	return got, nil
}

// Clean removes the package files the installs downloaded (apt-get clean, dnf clean
// packages, zypper clean, pacman's package cache), so that they do not stay in the
// environment's writable layer. The package index stays: the package manager still
// knows its repositories inside the environment.
func (m *Manager) Clean(ctx context.Context) error {
	argv := m.d.cleanCmd()
	r, err := m.exec(ctx, argv)
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return commandError(argv, r)
	}
	return nil
}

// Installed returns the installed version of each name, in the order given. A name
// that is not installed is a *PackageError wrapping ErrNotFound.
func (m *Manager) Installed(ctx context.Context, names []string) ([]Package, error) {
	if err := m.checkNames(names); err != nil {
		return nil, err
	}
	argv := m.d.installedCmd(names)
	r, err := m.exec(ctx, argv)
	if err != nil {
		return nil, err
	}
	versions := m.d.parseInstalled(r)
	out := make([]Package, len(names))
	for i, n := range names {
		v, ok := versions[n]
		if !ok {
			return nil, &PackageError{Manager: m.kind, Name: n, Err: ErrNotFound, Detail: "not installed"}
		}
		out[i] = Package{Name: n, Version: v}
	}
	return out, nil
}

func (m *Manager) exec(ctx context.Context, argv []string) (Result, error) {
	m.log.Debug("package manager", "kind", m.kind, "argv", argv)
	r, err := m.run.Run(ctx, argv, RunOptions{Env: m.d.env(), Log: m.out})
	if err != nil {
		return r, fmt.Errorf("%s: run %s: %w", m.kind, argv[0], err)
	}
	m.log.Debug("package manager done", "kind", m.kind, "argv0", argv[0], "exit", r.ExitCode)
	return r, nil
}

func (m *Manager) checkNames(names []string) error {
	for _, n := range names {
		if !validName(n) {
			return &PackageError{Manager: m.kind, Name: n, Err: ErrInvalidName,
				Detail: "want letters, digits and + - . _ @ (optionally :arch), not starting with - or ."}
		}
	}
	return nil
}

// validName accepts what apt, RPM and pacman allow in package names (plus one ":arch"
// qualifier for Debian multiarch), and nothing a tool would read as an option, a glob,
// a regular expression or a version constraint.
func validName(n string) bool {
	if n == "" || len(n) > 200 || n[0] == '-' || n[0] == '.' {
		return false
	}
	colons := 0
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '+' || c == '-' || c == '.' || c == '_' || c == '@':
		case c == ':':
			colons++
		default:
			return false
		}
	}
	return colons <= 1 && !strings.HasSuffix(n, ":")
}

// validVersion accepts Debian, RPM and pacman version strings.
func validVersion(v string) bool {
	if v == "" || len(v) > 200 || v[0] == '-' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("+-.~_:^", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func commandError(argv []string, r Result) error {
	return &CommandError{Argv: argv, ExitCode: r.ExitCode, Output: lastLines(r, 12)}
}

// lastLines keeps the end of a command's output for an error message: stderr when it
// has something, stdout otherwise.
func lastLines(r Result, n int) string {
	text := strings.TrimSpace(string(r.Stderr))
	if text == "" {
		text = strings.TrimSpace(string(r.Stdout))
	}
	lines := strings.Split(text, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// lines splits output into trimmed, non-empty lines.
func lines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimRight(l, "\r"); strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func hostRPMArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	case "arm":
		return "armv7hl"
	}
	return runtime.GOARCH
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Open detects the package manager of roots (see Detect) and returns a Manager for it.
func Open(r Runner, roots []string, opts ...Option) (*Manager, error) {
	kind, err := Detect(roots...)
	if err != nil {
		return nil, err
	}
	return New(kind, r, opts...)
}
