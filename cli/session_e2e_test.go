package cli

import (
	"bufio"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCLISessionStatus: on the Go path and the fast path, a missing command exits 127 and
// a file that cannot be executed 126, as in a shell; ^C (SIGINT to karapace, as the
// terminal sends it) reaches the command, whose handler runs, and karapace exits with
// the command's own status.
func TestCLISessionStatus(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	w.buildNamed("karapace.toml", "bb")
	w.ok("exec", "bb", "--", "/bin/true") // leaves the fast path's plan
	for _, p := range []struct {
		name string
		w    *world
	}{{"Go path", w.withEnv("KARAPACE_FASTEXEC=off")}, {"fast path", w.withEnv("KARAPACE_FASTEXEC=require")}} {
		if r := p.w.run("exec", "bb", "--", "no-such-command"); r.code != 127 || !strings.Contains(r.stderr, "no-such-command") {
			t.Errorf("%s: missing command: %s", p.name, r)
		}
		if r := p.w.run("exec", "bb", "--", "/etc/passwd"); r.code != 126 || !strings.Contains(r.stderr, "/etc/passwd") {
			t.Errorf("%s: not executable: %s", p.name, r)
		}
		c := p.w.cmd("exec", "bb", "--", "/bin/sh", "-c", "trap 'echo caught; exit 7' INT; echo ready; while :; do sleep 0.05; done")
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		if !lines.Scan() || lines.Text() != "ready" {
			_ = c.Process.Kill()
			t.Fatalf("%s: the command did not start: %q", p.name, lines.Text())
		}
		if err := c.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			var rest []string
			for lines.Scan() {
				rest = append(rest, lines.Text())
			}
			if strings.Join(rest, "\n") != "caught" {
				t.Errorf("%s: after SIGINT the command printed %q", p.name, rest)
			}
			done <- c.Wait()
		}()
		select {
		case err := <-done:
			if ee, ok := err.(interface{ ExitCode() int }); !ok || ee.ExitCode() != 7 {
				t.Errorf("%s: after SIGINT karapace exited %v, want the handler's 7", p.name, err)
			}
		case <-time.After(10 * time.Second):
			_ = c.Process.Kill()
			t.Fatalf("%s: SIGINT did not end the session", p.name)
		}
	}
	releaseKeepers(t, w.store)
}
