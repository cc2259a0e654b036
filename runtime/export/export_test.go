package export

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
)

var (
	idA = schema.SumString("env a")
	idB = schema.SumString("env b")
)

func tempDirs(t *testing.T) (Dirs, string) {
	t.Helper()
	home := t.TempDir()
	d, err := DirsFromEnv(func(k string) string {
		if k == "HOME" {
			return home
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, home
}

func TestDirsFromEnv(t *testing.T) {
	env := map[string]string{"HOME": "/home/a"}
	get := func(k string) string { return env[k] }
	d, err := DirsFromEnv(get)
	if err != nil || d.Bin != "/home/a/.local/bin" || d.Applications != "/home/a/.local/share/applications" {
		t.Fatalf("%+v %v", d, err)
	}
	env["XDG_DATA_HOME"] = "/data"
	if d, _ = DirsFromEnv(get); d.Applications != "/data/applications" {
		t.Fatalf("XDG_DATA_HOME ignored: %+v", d)
	}
	env["XDG_DATA_HOME"] = "relative"
	if d, _ = DirsFromEnv(get); d.Applications != "/home/a/.local/share/applications" {
		t.Fatalf("relative XDG_DATA_HOME used: %+v", d)
	}
	delete(env, "HOME")
	if _, err := DirsFromEnv(get); !errors.Is(err, ErrNoHome) {
		t.Fatalf("no HOME: %v", err)
	}
}

func TestValidateName(t *testing.T) {
	for name, ok := range map[string]bool{
		"firefox": true, "code-oss": true, "gimp2.10": true, "a_b+c": true, "X": true,
		"": false, "..": false, ".": false, ".hidden": false, "-x": false, "a/b": false,
		"../x": false, "a b": false, "a\nb": false, "karapace": false, strings.Repeat("a", 129): false,
	} {
		err := ValidateName(name)
		if (err == nil) != ok {
			t.Errorf("ValidateName(%q) = %v", name, err)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidateName(%q): %v is not ErrInvalidName", name, err)
		}
	}
}

// The launcher really runs: a stand-in karapace binary prints the argv it receives,
// so the quoting of every awkward argument is proven by the shell itself.
func TestExportLauncherRuns(t *testing.T) {
	d, home := tempDirs(t)
	fake := filepath.Join(home, "fake karapace")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nfor a in \"$@\"; do printf '[%s]\\n' \"$a\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := []string{"sh", "-c", `echo "it's $HOME" && exit 3`, "a b", "$(id)", "x\ny", "'"}
	e, err := Export(context.Background(), d, App{EnvID: idA, Name: "tool", Command: cmd, Karapace: fake, Store: "/st ore"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Launcher != filepath.Join(home, ".local/bin/tool") || e.Desktop != filepath.Join(home, ".local/share/applications/karapace-"+idA.Short()+"-tool.desktop") {
		t.Fatalf("paths %+v", e)
	}
	fi, err := os.Stat(e.Launcher)
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("launcher mode %v %v", fi.Mode(), err)
	}
	out, err := exec.Command(e.Launcher, "extra arg").Output()
	if err != nil {
		t.Fatalf("run launcher: %v", err)
	}
	want := []string{"--store", "/st ore", "exec", idA.String(), "--"}
	want = append(want, cmd...)
	want = append(want, "extra arg")
	var b strings.Builder
	for _, a := range want {
		b.WriteString("[" + a + "]\n")
	}
	if string(out) != b.String() {
		t.Fatalf("launcher argv:\n%s\nwant:\n%s", out, b.String())
	}
}

func TestDesktopEntry(t *testing.T) {
	d, _ := tempDirs(t)
	e, err := Export(context.Background(), d, App{EnvID: idA, Name: "firefox", Command: []string{"firefox"}, Karapace: "/usr/bin/karapace"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(e.Desktop)
	if err != nil {
		t.Fatal(err)
	}
	want := "[Desktop Entry]\nType=Application\nName=firefox (Karapace " + idA.Short() + ")\n" +
		"Comment=Launched inside Karapace environment " + idA.Short() + "\n" +
		"Exec=" + e.Launcher + "\nIcon=firefox\nTerminal=false\nCategories=X-Karapace;\n" +
		"X-Karapace-EnvId=" + idA.String() + "\nX-Karapace-App=firefox\n"
	if string(b) != want {
		t.Fatalf("desktop entry:\n%s\nwant:\n%s", b, want)
	}
}

func TestDesktopExecArg(t *testing.T) {
	tests := map[string]string{
		"/home/a/.local/bin/x":   "/home/a/.local/bin/x",
		"/home/my user/bin/x":    `"/home/my user/bin/x"`,
		`/a"b`:                   `"/a\\"b"`,
		`/a\b`:                   `"/a\\\\b"`,
		"/a$b":                   `"/a\\$b"`,
		"/a`b":                   "\"/a\\\\`b\"",
		"/100%":                  "/100%%",
		"":                       `""`,
		"/a\nb":                  "\"/a\\nb\"",
		"/semi;colon and % both": `"/semi;colon and %% both"`,
	}
	for in, want := range tests {
		if got := desktopExecArg(in); got != want {
			t.Errorf("desktopExecArg(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestListUnexportRoundTrip(t *testing.T) {
	ctx := context.Background()
	d, _ := tempDirs(t)
	for _, app := range []App{
		{EnvID: idA, Name: "one", Command: []string{"one"}},
		{EnvID: idA, Name: "two", Command: []string{"two", "--flag"}},
		{EnvID: idB, Name: "three", Command: []string{"three"}},
	} {
		if _, err := Export(ctx, d, app); err != nil {
			t.Fatal(err)
		}
	}
	// Re-exporting the same name for the same environment updates it.
	if _, err := Export(ctx, d, App{EnvID: idA, Name: "two", Command: []string{"two", "--other"}}); err != nil {
		t.Fatalf("re-export: %v", err)
	}
	names := func(id schema.EnvID) string {
		l, err := List(ctx, d, id)
		if err != nil {
			t.Fatal(err)
		}
		var n []string
		for _, e := range l {
			if e.Launcher == "" || e.Desktop == "" {
				t.Errorf("incomplete export %+v", e)
			}
			n = append(n, e.Name)
		}
		return strings.Join(n, ",")
	}
	if got := names(idA); got != "one,two" {
		t.Fatalf("List(A) = %s", got)
	}
	if got := names(idB); got != "three" {
		t.Fatalf("List(B) = %s", got)
	}
	if err := Unexport(ctx, d, idA, "one"); err != nil {
		t.Fatal(err)
	}
	if got := names(idA); got != "two" {
		t.Fatalf("after unexport: %s", got)
	}
	if err := Unexport(ctx, d, idA, "one"); !errors.Is(err, ErrNotExported) {
		t.Fatalf("second unexport: %v", err)
	}
	if err := Unexport(ctx, d, idA, "three"); !errors.Is(err, ErrNotExported) {
		t.Fatalf("unexport of another env's app: %v", err)
	}
	removed, err := UnexportAll(ctx, d, idA)
	if err != nil || strings.Join(removed, ",") != "two" {
		t.Fatalf("UnexportAll = %v, %v", removed, err)
	}
	if got := names(idA); got != "" {
		t.Fatalf("after UnexportAll: %s", got)
	}
	if got := names(idB); got != "three" {
		t.Fatalf("UnexportAll touched another env: %s", got)
	}
	// Nothing but B's two files is left, and no temp files.
	var left []string
	for _, dir := range []string{d.Bin, d.Applications} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			left = append(left, e.Name())
		}
	}
	if len(left) != 2 {
		t.Fatalf("files left: %v", left)
	}
}

func TestExportRefusesForeignFiles(t *testing.T) {
	ctx := context.Background()
	d, _ := tempDirs(t)
	if err := os.MkdirAll(d.Bin, 0o755); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(d.Bin, "mine")
	if err := os.WriteFile(mine, []byte("#!/bin/sh\necho user script\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(ctx, d, App{EnvID: idA, Name: "mine", Command: []string{"x"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("overwrote a user script: %v", err)
	}
	if b, _ := os.ReadFile(mine); string(b) != "#!/bin/sh\necho user script\n" {
		t.Fatal("user script changed")
	}
	// Another environment's export of the same name is not taken over either.
	if _, err := Export(ctx, d, App{EnvID: idB, Name: "shared", Command: []string{"x"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := Export(ctx, d, App{EnvID: idA, Name: "shared", Command: []string{"x"}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("took over env B's launcher: %v", err)
	}
	// UnexportAll never removes what is not ours.
	if _, err := UnexportAll(ctx, d, idA); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mine); err != nil {
		t.Fatal("user script removed")
	}
}

func TestExportValidation(t *testing.T) {
	ctx := context.Background()
	d, _ := tempDirs(t)
	for _, app := range []App{
		{EnvID: idA, Name: "../evil", Command: []string{"x"}},
		{EnvID: idA, Name: "ok", Command: nil},
		{EnvID: schema.EnvID{}, Name: "ok", Command: []string{"x"}},
		{EnvID: idA, Name: "ok", Command: []string{"a\x00b"}},
	} {
		if _, err := Export(ctx, d, app); err == nil {
			t.Errorf("Export(%+v) succeeded", app)
		}
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Export(cctx, d, App{EnvID: idA, Name: "ok", Command: []string{"x"}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := os.Stat(d.Bin); err == nil {
		t.Fatal("failed exports created files")
	}
}
