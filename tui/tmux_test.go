package tui

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
)

// The end-to-end test runs the UI in a real terminal: tmux, driven with send-keys and
// read with capture-pane. The UI process is this test binary re-executed (TestMain
// dispatches on childEnv) on a store the test prepared with the mock backend.

const (
	childEnv      = "KARAPACE_TUI_TEST_CHILD"
	childStoreEnv = "KARAPACE_TUI_TEST_STORE"
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "1":
		os.Exit(runChild())
	case "notty":
		err := Run(context.Background(), Options{StoreRoot: os.Getenv(childStoreEnv), Backends: mockBackends()})
		fmt.Fprintln(os.Stderr, err)
		if errors.Is(err, ErrTerminal) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// runChild is the UI process: the store from the environment, the mock backend, and
// `e` running `mock:cat` on the terminal (it echoes what is typed until ^D) so that the
// test can see the session own the terminal and the UI come back.
func runChild() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := os.Getenv(childStoreEnv)
	eng, err := core.New(ctx, core.Options{StoreRoot: root, Backends: mockBackends()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	err = Run(ctx, Options{
		Engine: eng, Version: "e2e",
		Enter: func(ctx context.Context, env core.Env) (int, error) {
			fmt.Printf("session in %s: type lines, ^D ends it\n", envLabel(&env))
			return eng.Enter(ctx, env.EnvID, runtimeStdioOS(), []string{"mock:cat"})
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

type tmux struct {
	t      *testing.T
	socket string
}

func (x *tmux) run(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket, "-f", "/dev/null"}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (x *tmux) screen() string { return x.run("capture-pane", "-p", "-t", "ui") }

func (x *tmux) send(keys ...string) { x.run(append([]string{"send-keys", "-t", "ui"}, keys...)...) }

// literal types text as is (no key-name lookup).
func (x *tmux) literal(text string) { x.run("send-keys", "-t", "ui", "-l", text) }

func (x *tmux) waitFor(what string, pred func(string) bool) string {
	x.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := x.screen()
		if pred(s) {
			return s
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("timed out waiting for %s; the pane:\n%s", what, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (x *tmux) waitText(sub string) string {
	x.t.Helper()
	return x.waitFor(fmt.Sprintf("%q", sub), func(s string) bool { return strings.Contains(s, sub) })
}

func TestEndToEndInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is required under CI=true (it is in .ci/packages)")
		}
		t.Skip("SKIPPING the real-terminal test: tmux is not installed")
	}
	root := t.TempDir()
	e := newEngine(t, root)
	web := buildEnv(t, e, "web", "git")
	db := buildEnv(t, e, "db", "postgresql")

	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(t.TempDir(), "status")
	x := &tmux{t: t, socket: fmt.Sprintf("karapace-tui-test-%d", os.Getpid())}
	t.Cleanup(func() {
		// Only the server on our own socket.
		_ = exec.Command("tmux", "-L", x.socket, "kill-server").Run()
	})
	cmd := fmt.Sprintf("env %s=1 %s=%s TERM=screen-256color %s; echo exit=$? > %s; sleep 60",
		childEnv, childStoreEnv, root, self, status)
	x.run("new-session", "-d", "-s", "ui", "-x", "120", "-y", "40", cmd)

	s := x.waitText("Environments (2/2)")
	for _, want := range []string{"Karapace Environment Manager  ve2e", "SHORT_ID", "web", "db", "mock"} {
		if !strings.Contains(s, want) {
			t.Errorf("pane lacks %q:\n%s", want, s)
		}
	}
	// Navigation and the detail view (db sorts first; j selects web).
	x.send("j")
	x.send("Enter")
	x.waitText("Lock (what the env id pins)")
	x.waitText(web.String())
	x.send("Escape")
	x.waitFor("the list", func(s string) bool { return !strings.Contains(s, "Lock (what") })

	// Freeze db behind the confirmation.
	x.send("g")
	x.send("f")
	x.waitText("Freeze 'db'?")
	x.send("y")
	x.waitText("frozen 'db'")
	if st := inspect(t, e, db).State; st != core.Frozen {
		t.Fatalf("db is %s", st)
	}

	// Non-ASCII search.
	x.send("/")
	x.literal("wéb日本")
	x.waitText("No environment matches 'wéb日本'")
	x.send("Escape")
	x.waitText("filter cleared")

	// Resize to a tiny window and back: still alive, redrawn.
	x.run("resize-window", "-t", "ui", "-x", "12", "-y", "3")
	time.Sleep(200 * time.Millisecond)
	x.run("resize-window", "-t", "ui", "-x", "100", "-y", "30")
	x.waitText("Environments (2/2)")

	// Rename web.
	x.send("j")
	x.send("n")
	x.waitText("rename 'web' to:")
	x.literal("frontend")
	x.send("Enter")
	x.waitText("renamed 'web' to 'frontend'")
	if n := inspect(t, e, web).DisplayName(); n != "frontend" {
		t.Fatalf("web is named %q", n)
	}

	// Enter: the UI hands the terminal to the session and comes back after it.
	x.send("e")
	x.waitText("session in frontend: type lines, ^D ends it")
	for deadline := time.Now().Add(10 * time.Second); inspect(t, e, web).State != core.Running; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("during the session web is %s", inspect(t, e, web).State)
		}
	}
	x.literal("hello from the session")
	x.send("Enter")
	x.waitFor("the echo", func(s string) bool { return strings.Count(s, "hello from the session") >= 2 })
	x.send("C-d")
	x.waitText("session in 'frontend' ended (exit status 0)")
	x.waitText("Environments (2/2)")
	if st := inspect(t, e, web).State; st != core.Built {
		t.Fatalf("after the session web is %s", st)
	}

	// Quit.
	x.send("q")
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, err := os.ReadFile(status)
		if err == nil && strings.TrimSpace(string(b)) != "" {
			if got := strings.TrimSpace(string(b)); got != "exit=0" {
				t.Fatalf("the UI ended with %s; pane:\n%s", got, x.screen())
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the UI did not quit; pane:\n%s", x.screen())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The terminal is restored: the shell's output is on a normal screen.
	if s := x.screen(); strings.Contains(s, "Karapace Environment Manager") {
		t.Errorf("the UI is still drawn after quitting:\n%s", s)
	}
}

func runtimeStdioOS() runtime.Stdio {
	return runtime.Stdio{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
}

// Without a controlling terminal Run fails at once with ErrTerminal (karapace tui run
// from a script or a service), instead of hanging or panicking.
func TestRunWithoutTerminal(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), childEnv+"=notty", childStoreEnv+"="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("exit %v, want 3 (ErrTerminal); output: %s", err, out)
	}
	if !strings.Contains(string(out), "terminal error") {
		t.Fatalf("output %q", out)
	}
}
