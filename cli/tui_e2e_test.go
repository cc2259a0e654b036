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
	socket := fmt.Sprintf("karapace-cli-test-%d", os.Getpid())
	t.Cleanup(func() { exec.Command("tmux", "-L", socket, "kill-server").Run() })
	status := filepath.Join(t.TempDir(), "status")
	script := fmt.Sprintf("env KARAPACE_STORE=%s HOME=%s TERM=screen-256color %s tui; echo exit=$? > %s; sleep 60",
		w.store, w.dir, binary, status)
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", "ui", "-x", "120", "-y", "30", script)
	var pane string
	waitFor(t, 15*time.Second, "the environment list", func() bool {
		pane = tmux("capture-pane", "-p", "-t", "ui")
		return strings.Contains(pane, "demo") && strings.Contains(pane, id[:12])
	})
	tmux("send-keys", "-t", "ui", "q")
	waitFor(t, 15*time.Second, "the UI to quit", func() bool {
		b, err := os.ReadFile(status)
		return err == nil && strings.TrimSpace(string(b)) != ""
	})
	if b, _ := os.ReadFile(status); strings.TrimSpace(string(b)) != "exit=0" {
		t.Errorf("karapace tui ended with %s; last screen:\n%s", b, pane)
	}
}
