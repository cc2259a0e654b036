// Package export publishes commands of an environment to the host desktop: a launcher
// script in ~/.local/bin/<name> that runs `karapace exec <env> -- <command>`, and a
// desktop entry in $XDG_DATA_HOME/applications (default ~/.local/share/applications)
// named karapace-<short>-<name>.desktop that starts the launcher.
//
// Every file it writes carries the environment's full id, so listing and removal touch
// only files that karapace wrote for that environment; a file of the same name that is
// not ours is never overwritten. Writes are atomic (temp file, fsync, rename).
//
// export imports schema only; it starts no processes.
package export

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/karapace/karapace/schema"
)

// Error classes.
var (
	ErrInvalidName = errors.New("invalid app name")
	ErrNotExported = errors.New("app is not exported")
	// ErrConflict: a file of that name exists and karapace did not write it for this
	// environment.
	ErrConflict = errors.New("export would overwrite a file karapace does not own")
	ErrNoHome   = errors.New("HOME environment variable not set")
)

// Dirs are where exports go.
type Dirs struct {
	Bin          string // ~/.local/bin
	Applications string // $XDG_DATA_HOME/applications
}

// DirsFromEnv derives Dirs from HOME and XDG_DATA_HOME (ignored unless absolute, as the
// XDG base directory specification says).
func DirsFromEnv(getenv func(string) string) (Dirs, error) {
	home := getenv("HOME")
	if home == "" || !filepath.IsAbs(home) {
		return Dirs{}, ErrNoHome
	}
	data := getenv("XDG_DATA_HOME")
	if data == "" || !filepath.IsAbs(data) {
		data = filepath.Join(home, ".local", "share")
	}
	return Dirs{Bin: filepath.Join(home, ".local", "bin"), Applications: filepath.Join(data, "applications")}, nil
}

// App is one command to export.
type App struct {
	EnvID schema.EnvID
	Name  string
	// Command is the argv run inside the environment; the launcher appends its own
	// arguments.
	Command []string
	// Karapace is the karapace binary the launcher runs; "karapace" (found on PATH)
	// when empty.
	Karapace string
	// Store, when set, is passed as --store.
	Store string
}

// Exported is one export found on disk.
type Exported struct {
	EnvID    schema.EnvID
	Name     string
	Launcher string // path of the launcher script ("" when missing)
	Desktop  string // path of the desktop entry ("" when missing)
}

// reserved names would shadow karapace's own binaries on PATH.
var reserved = map[string]bool{"karapace": true, "karapace-dbus": true, "karapace-server": true}

// ValidateName accepts 1 to 128 characters of [A-Za-z0-9._+-], starting with a letter
// or digit: a safe file name (no '/', no '..', no leading '-' or '.') in both
// directories.
func ValidateName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("%w: %q: want 1 to 128 characters", ErrInvalidName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '+' || c == '-') && i > 0:
		default:
			return fmt.Errorf("%w: %q: use letters, digits and . _ + - (not first)", ErrInvalidName, name)
		}
	}
	if reserved[name] {
		return fmt.Errorf("%w: %q would shadow karapace itself", ErrInvalidName, name)
	}
	return nil
}

func desktopName(id schema.EnvID, name string) string {
	return "karapace-" + id.Short() + "-" + name + ".desktop"
}

// marker is the launcher's second line; it identifies our scripts.
func marker(id schema.EnvID, name string) string {
	return "# karapace-export env=" + id.String() + " name=" + name
}

// shellQuote is POSIX single quoting.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Launcher renders the launcher script of app.
func Launcher(app App) string {
	bin := app.Karapace
	if bin == "" {
		bin = "karapace"
	}
	argv := []string{bin}
	if app.Store != "" {
		argv = append(argv, "--store", app.Store)
	}
	argv = append(argv, "exec", app.EnvID.String(), "--")
	argv = append(argv, app.Command...)
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	b.WriteString(marker(app.EnvID, app.Name) + "\n")
	fmt.Fprintf(&b, "# Runs %s in Karapace environment %s. Remove with: karapace unexport-app %s %s\n", app.Name, app.EnvID.Short(), app.EnvID.Short(), app.Name)
	b.WriteString("exec " + strings.Join(q, " ") + ` "$@"` + "\n")
	return b.String()
}

// desktopString escapes a value of type string (desktop entry specification).
func desktopString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`, "\r", `\r`)
	return r.Replace(s)
}

// desktopExecArg quotes one Exec argument: reserved characters force double quotes, in
// which ", `, $ and \ are backslash-escaped; then the string escaping applies on top
// (so a literal backslash becomes four), and % is doubled.
func desktopExecArg(s string) string {
	arg := s
	if s == "" || strings.ContainsAny(s, " \t\n\"'\\><~|&;$*?#()`") {
		arg = `"` + strings.NewReplacer(`"`, `\"`, "`", "\\`", `$`, `\$`, `\`, `\\`).Replace(s) + `"`
	}
	return strings.ReplaceAll(desktopString(arg), "%", "%%")
}

// Desktop renders the desktop entry of app, starting the launcher at launcher.
func Desktop(app App, launcher string) string {
	short := app.EnvID.Short()
	lines := []string{
		"[Desktop Entry]",
		"Type=Application",
		"Name=" + desktopString(app.Name+" (Karapace "+short+")"),
		"Comment=" + desktopString("Launched inside Karapace environment "+short),
		"Exec=" + desktopExecArg(launcher),
		"Icon=" + desktopString(app.Name),
		"Terminal=false",
		"Categories=X-Karapace;",
		"X-Karapace-EnvId=" + app.EnvID.String(),
		"X-Karapace-App=" + app.Name,
	}
	if app.Store != "" {
		lines = append(lines, "X-Karapace-Store="+desktopString(app.Store))
	}
	return strings.Join(lines, "\n") + "\n"
}

// Export writes app's launcher and desktop entry, replacing an earlier export of the
// same name for the same environment. It refuses (ErrConflict) to replace any other
// file.
func Export(ctx context.Context, d Dirs, app App) (Exported, error) {
	if err := ctx.Err(); err != nil {
		return Exported{}, err
	}
	if err := ValidateName(app.Name); err != nil {
		return Exported{}, err
	}
	if app.EnvID.IsZero() {
		return Exported{}, errors.New("export: env id is zero")
	}
	if len(app.Command) == 0 {
		return Exported{}, errors.New("export: command is empty")
	}
	for _, a := range append([]string{app.Karapace, app.Store}, app.Command...) {
		if strings.ContainsRune(a, 0) {
			return Exported{}, fmt.Errorf("export: argument %q holds a NUL byte", a)
		}
	}
	e := Exported{
		EnvID:    app.EnvID,
		Name:     app.Name,
		Launcher: filepath.Join(d.Bin, app.Name),
		Desktop:  filepath.Join(d.Applications, desktopName(app.EnvID, app.Name)),
	}
	if err := checkOwned(e.Launcher, func(p string) (bool, error) { return launcherIs(p, app.EnvID, app.Name) }); err != nil {
		return Exported{}, err
	}
	if err := checkOwned(e.Desktop, func(p string) (bool, error) { return desktopIs(p, app.EnvID, app.Name) }); err != nil {
		return Exported{}, err
	}
	for _, dir := range []string{d.Bin, d.Applications} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return Exported{}, fmt.Errorf("export %s: %w", app.Name, err)
		}
	}
	if err := writeAtomic(e.Launcher, []byte(Launcher(app)), 0o755); err != nil {
		return Exported{}, fmt.Errorf("export %s: launcher: %w", app.Name, err)
	}
	if err := writeAtomic(e.Desktop, []byte(Desktop(app, e.Launcher)), 0o644); err != nil {
		_ = os.Remove(e.Launcher)
		return Exported{}, fmt.Errorf("export %s: desktop entry: %w", app.Name, err)
	}
	return e, nil
}

// checkOwned passes when path is absent or is ours (by owned).
func checkOwned(path string, owned func(string) (bool, error)) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().IsRegular() {
		ok, err := owned(path)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrConflict, path)
}

// headLines reads at most n lines of a regular file, reading no more than 64 KiB.
func headLines(path string, n int) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 64<<10))
	var out []string
	for len(out) < n && sc.Scan() {
		out = append(out, sc.Text())
	}
	return out, nil
}

// launcherEnv returns the env id and app name of one of our launchers, ok=false when the
// file is not one.
func launcherEnv(path string) (id schema.EnvID, name string, ok bool) {
	lines, err := headLines(path, 2)
	if err != nil || len(lines) < 2 || lines[0] != "#!/bin/sh" {
		return id, "", false
	}
	rest, found := strings.CutPrefix(lines[1], "# karapace-export env=")
	if !found {
		return id, "", false
	}
	hex, name, found := strings.Cut(rest, " name=")
	if !found {
		return id, "", false
	}
	id, err = schema.ParseEnvID(hex)
	return id, name, err == nil
}

func launcherIs(path string, id schema.EnvID, name string) (bool, error) {
	got, n, ok := launcherEnv(path)
	return ok && got == id && n == name, nil
}

// desktopFields reads the X-Karapace-* keys of a desktop entry.
func desktopFields(path string) (id schema.EnvID, name string, ok bool) {
	lines, err := headLines(path, 64)
	if err != nil {
		return id, "", false
	}
	var idOK bool
	for _, l := range lines {
		if v, found := strings.CutPrefix(l, "X-Karapace-EnvId="); found {
			id, err = schema.ParseEnvID(v)
			idOK = err == nil
		}
		if v, found := strings.CutPrefix(l, "X-Karapace-App="); found {
			name = v
		}
	}
	return id, name, idOK && name != ""
}

func desktopIs(path string, id schema.EnvID, name string) (bool, error) {
	got, n, ok := desktopFields(path)
	return ok && got == id && n == name, nil
}

// List returns the exports of one environment, sorted by name: every desktop entry and
// every launcher karapace wrote for it.
func List(ctx context.Context, d Dirs, id schema.EnvID) ([]Exported, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	byName := map[string]*Exported{}
	get := func(name string) *Exported {
		if e, ok := byName[name]; ok {
			return e
		}
		e := &Exported{EnvID: id, Name: name}
		byName[name] = e
		return e
	}
	prefix := "karapace-" + id.Short() + "-"
	ents, err := readDir(d.Applications)
	if err != nil {
		return nil, err
	}
	for _, ent := range ents {
		n := ent.Name()
		if !ent.Type().IsRegular() || !strings.HasPrefix(n, prefix) || !strings.HasSuffix(n, ".desktop") {
			continue
		}
		p := filepath.Join(d.Applications, n)
		if got, name, ok := desktopFields(p); ok && got == id && n == desktopName(id, name) {
			get(name).Desktop = p
		}
	}
	ents, err = readDir(d.Bin)
	if err != nil {
		return nil, err
	}
	for _, ent := range ents {
		if !ent.Type().IsRegular() {
			continue
		}
		p := filepath.Join(d.Bin, ent.Name())
		if got, name, ok := launcherEnv(p); ok && got == id && name == ent.Name() {
			get(name).Launcher = p
		}
	}
	out := make([]Exported, 0, len(byName))
	for _, e := range byName {
		out = append(out, *e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readDir(dir string) ([]fs.DirEntry, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return ents, err
}

// Unexport removes one export of an environment. ErrNotExported when neither file
// exists (or they are not ours).
func Unexport(ctx context.Context, d Dirs, id schema.EnvID, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	all, err := List(ctx, d, id)
	if err != nil {
		return err
	}
	for _, e := range all {
		if e.Name == name {
			return remove(e)
		}
	}
	return fmt.Errorf("%w: %s in environment %s", ErrNotExported, name, id.Short())
}

// UnexportAll removes every export of an environment (destroy calls it) and returns the
// names removed.
func UnexportAll(ctx context.Context, d Dirs, id schema.EnvID) ([]string, error) {
	all, err := List(ctx, d, id)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range all {
		if err := remove(e); err != nil {
			return names, err
		}
		names = append(names, e.Name)
	}
	return names, nil
}

func remove(e Exported) error {
	for _, p := range []string{e.Desktop, e.Launcher} {
		if p == "" {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("unexport %s: %w", e.Name, err)
		}
	}
	return nil
}

// writeAtomic writes data to path through a temp file in the same directory: write,
// fsync, chmod, rename, fsync the directory.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	dir := filepath.Dir(path)
	var f *os.File
	var err error
	for range 100 {
		tmp := filepath.Join(dir, fmt.Sprintf(".%s.tmp%06d", filepath.Base(path), rand.IntN(1000000)))
		f, err = os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			break
		}
	}
	if err != nil {
		return err
	}
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(f.Name())
		return err
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	dh, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer dh.Close()
	return dh.Sync()
}
