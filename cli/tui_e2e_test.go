package cli

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestCLITUINoTerminal(t *testing.T) {
	w := newWorld(t)
	// A new session has no controlling terminal, wherever the tests run.
	c := w.cmd("tui")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	var errb strings.Builder
	c.Stderr = &errb
	err := c.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "the terminal UI needs a terminal") {
		t.Errorf("tui without a terminal: %v, stderr %q", err, errb.String())
	}
	w.fail(1, []string{"JSON output is not supported for 'tui'"}, "tui", "--json")
}

// karapace tui in a real terminal (tmux): it lists the store's environments and quits
// with q, exit status 0.
func TestCLITUIInTmux(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is required under CI=true (it is in .ci/packages)")
		}
		t.Skip("SKIPPING the real-terminal test: tmux is not installed")
	}
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling", "git")
	id := w.buildNamed("karapace.toml", "demo")
	x := startTmux(t, w, "tui")
	pane := x.waitFor("the environment list", func(pane string) bool {
		return strings.Contains(pane, "demo") && strings.Contains(pane, id[:12])
	})
	x.tmux("send-keys", "-t", "ui", "q")
	if got := x.exitStatus(); got != 0 {
		t.Errorf("karapace tui ended with %d; last screen:\n%s", got, pane)
	}
}

// tmuxRun is the binary running in a terminal of a private tmux server.
type tmuxRun struct {
	t      *testing.T
	socket string
	status string // file the wrapper writes the exit status into
}

// startTmux runs `karapace args...` in a 120x30 terminal, as w's user would.
func startTmux(t *testing.T, w *world, args ...string) *tmuxRun {
	t.Helper()
	if _, err := exec.LookPath("tmux"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is required under CI=true (it is in .ci/packages)")
		}
		t.Skip("SKIPPING the real-terminal test: tmux is not installed")
	}
	x := &tmuxRun{t: t, socket: fmt.Sprintf("karapace-cli-test-%d-%d", os.Getpid(), time.Now().UnixNano()),
		status: filepath.Join(t.TempDir(), "status")}
	t.Cleanup(func() { exec.Command("tmux", "-L", x.socket, "kill-server").Run() })
	var env []string
	for _, kv := range w.env {
		env = append(env, shellQuote(kv))
	}
	quoted := []string{shellQuote(binary)}
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	script := fmt.Sprintf("cd %s && env %s TERM=screen-256color %s; echo $? > %s; sleep 60",
		shellQuote(w.dir), strings.Join(env, " "), strings.Join(quoted, " "), x.status)
	x.tmux("new-session", "-d", "-s", "ui", "-x", "120", "-y", "30", script)
	return x
}

func (x *tmuxRun) tmux(args ...string) string {
	x.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-L", x.socket}, args...)...).CombinedOutput()
	if err != nil {
		x.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// waitFor polls the screen until cond holds and returns that screen.
func (x *tmuxRun) waitFor(what string, cond func(pane string) bool) string {
	x.t.Helper()
	var pane string
	deadline := time.Now().Add(15 * time.Second)
	for {
		pane = x.tmux("capture-pane", "-p", "-t", "ui")
		if cond(pane) {
			return pane
		}
		if time.Now().After(deadline) {
			x.t.Fatalf("timed out waiting for %s; screen:\n%s", what, pane)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// exitStatus waits for the command to end and returns its exit status.
func (x *tmuxRun) exitStatus() int {
	x.t.Helper()
	var n int
	x.waitFor("the command to end", func(string) bool {
		b, err := os.ReadFile(x.status)
		if err != nil || strings.TrimSpace(string(b)) == "" {
			return false
		}
		_, err = fmt.Sscan(string(b), &n)
		return err == nil
	})
	return n
}

// shellQuote is POSIX single-quoting.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// new asks its questions on a real terminal, and build draws its spinner there.
func TestCLINewAndBuildOnATerminal(t *testing.T) {
	w := newWorld(t)
	x := startTmux(t, w, "new", "demo")
	send := func(keys string) {
		if keys != "" {
			x.tmux("send-keys", "-t", "ui", "-l", keys)
		}
		x.tmux("send-keys", "-t", "ui", "Enter")
	}
	x.waitFor("the image question", func(p string) bool { return strings.Contains(p, "base image [debian/bookworm]:") })
	send("")
	x.waitFor("the packages question", func(p string) bool {
		return strings.Contains(p, "packages (separated by spaces or commas, empty to skip):")
	})
	send("git make")
	x.waitFor("the mount question", func(p string) bool { return strings.Contains(p, "mount (format") })
	send("")
	x.waitFor("the backend question", func(p string) bool { return strings.Contains(p, "3) mock") })
	send("mock")
	x.waitFor("the isolation question", func(p string) bool { return strings.Contains(p, "enable network isolation? [y/N]:") })
	send("")
	if got := x.exitStatus(); got != 0 {
		t.Fatalf("new exited %d:\n%s", got, x.tmux("capture-pane", "-p", "-t", "ui"))
	}
	b, err := os.ReadFile(filepath.Join(w.dir, "karapace.toml"))
	if err != nil || !strings.Contains(string(b), `packages = ["git", "make"]`) || !strings.Contains(string(b), `backend = "mock"`) {
		t.Fatalf("manifest from the prompts (%v):\n%s", err, b)
	}

	b2 := startTmux(t, w, "build", "--name", "demo")
	pane := b2.waitFor("the build to finish", func(p string) bool { return strings.Contains(p, "built environment 'demo'") })
	if got := b2.exitStatus(); got != 0 || !strings.Contains(pane, "✓ environment built") {
		t.Errorf("build on a terminal: exit %d\n%s", got, pane)
	}
}
