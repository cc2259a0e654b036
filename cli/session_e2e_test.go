package cli

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

// TestCLISessionStartsInTheCallersDirectory: exec from a sub directory of a mounted
// project starts there (Go path and fast path), and outside every mount and the home in
// the home directory.
func TestCLISessionStartsInTheCallersDirectory(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	sub := filepath.Join(w.dir, "sub", "dir")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[mounts]\nworkspace = \""+
		w.dir+":/workspace\"\n\n[runtime]\nbackend = \"namespace\"\n")
	w.buildNamed("karapace.toml", "bb")
	pwd := func(p *world, dir string) result {
		c := p.cmd("exec", "bb", "--", "/bin/sh", "-c", "pwd")
		c.Dir = dir
		var out, errb strings.Builder
		c.Stdout, c.Stderr = &out, &errb
		code := 0
		if err := c.Run(); err != nil {
			code = -1
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
		}
		return result{stdout: out.String(), stderr: errb.String(), code: code}
	}
	if r := pwd(w, sub); r.code != 0 || r.stdout != "/workspace/sub/dir\n" {
		t.Errorf("first exec from %s: %s", sub, r)
	}
	if r := pwd(w.withEnv("KARAPACE_FASTEXEC=require"), sub); r.code != 0 || r.stdout != "/workspace/sub/dir\n" {
		t.Errorf("fast exec from %s: %s", sub, r)
	}
	var home string
	for _, kv := range w.env {
		if v, ok := strings.CutPrefix(kv, "HOME="); ok {
			home = v
		}
	}
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if r := pwd(w, "/"); r.code != 0 || r.stdout != home+"\n" {
		t.Errorf("exec from /: %s (want the home %s)", r, home)
	}
	releaseKeepers(t, w.store)
}

// TestCLIInsideIdentity: the hostname resolves (it is in /etc/hosts), /etc/hostname agrees
// with it, and the prompt variables name the environment, on the Go path and the fast
// path.
func TestCLIInsideIdentity(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	id := w.buildNamed("karapace.toml", "bb")
	want := "karapace-" + id[:12] + "\nkarapace-" + id[:12] + "\n127.0.1.1\tkarapace-" + id[:12] + "\nbb bb\n"
	probe := []string{"exec", "bb", "--", "/bin/sh", "-c", `hostname; cat /etc/hostname; grep "$(hostname)" /etc/hosts; echo "$debian_chroot $KARAPACE_ENV_NAME"`}
	if r := w.ok(probe...); r.stdout != want {
		t.Errorf("Go path:\n%s\nwant:\n%s", r, want)
	}
	if r := w.withEnv("KARAPACE_FASTEXEC=require").ok(probe...); r.stdout != want {
		t.Errorf("fast path:\n%s\nwant:\n%s", r, want)
	}
	releaseKeepers(t, w.store)
}

// TestCLISessionVariablesAndAgent: exec -e sets variables for that session only (the
// deny list still refuses credentials), and --ssh-agent binds the caller's agent socket,
// which otherwise stays out.
func TestCLISessionVariablesAndAgent(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	w.buildNamed("karapace.toml", "bb")
	if r := w.ok("exec", "-e", "FOO=bar", "-e", "EMPTY=", "bb", "--", "/bin/sh", "-c", `echo "$FOO|${EMPTY-unset}"`); r.stdout != "bar|\n" {
		t.Errorf("exec -e: %s", r)
	}
	// The next plain exec (the fast path too) does not inherit them.
	for _, p := range []*world{w, w.withEnv("KARAPACE_FASTEXEC=require")} {
		if r := p.ok("exec", "bb", "--", "/bin/sh", "-c", `echo "${FOO-unset}"`); r.stdout != "unset\n" {
			t.Errorf("plain exec after exec -e: %s", r)
		}
	}
	w.fail(1, []string{"deny list"}, "exec", "-e", "GITHUB_TOKEN=x", "bb", "--", "/bin/true")
	w.fail(2, []string{"KEY=VALUE"}, "exec", "-e", "novalue", "bb", "--", "/bin/true")

	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	agent := w.withEnv("SSH_AUTH_SOCK=" + sock)
	check := `if [ -S "$SSH_AUTH_SOCK" ]; then echo "socket $SSH_AUTH_SOCK"; else echo "none ${SSH_AUTH_SOCK-unset}"; fi`
	if r := agent.ok("exec", "--ssh-agent", "bb", "--", "/bin/sh", "-c", check); !strings.HasPrefix(r.stdout, "socket /run/user/") {
		t.Errorf("--ssh-agent: %s", r)
	}
	if r := agent.ok("exec", "bb", "--", "/bin/sh", "-c", check); r.stdout != "none unset\n" {
		t.Errorf("without --ssh-agent the agent leaked in: %s", r)
	}
	w.withEnv("SSH_AUTH_SOCK=/nonexistent").fail(1, []string{"SSH_AUTH_SOCK", "ssh-agent"}, "exec", "--ssh-agent", "bb", "--", "/bin/true")
	releaseKeepers(t, w.store)
}

// TestCLIManifestEnv: the manifest's [env] reaches sessions (Go path and fast path);
// changing it and building again keeps the environment (same id, nothing rebuilt from
// scratch) and the next session has the new value.
func TestCLIManifestEnv(t *testing.T) {
	w := busyboxWorld(t, "namespace")
	manifest := func(v string) {
		w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \"namespace\"\n\n[env]\nGREETING = \""+v+"\"\n")
	}
	manifest("one")
	id := w.buildNamed("karapace.toml", "bb")
	probe := []string{"exec", "bb", "--", "/bin/sh", "-c", "echo $GREETING"}
	if r := w.ok(probe...); r.stdout != "one\n" {
		t.Errorf("[env] in a session: %s", r)
	}
	if r := w.withEnv("KARAPACE_FASTEXEC=require").ok(probe...); r.stdout != "one\n" {
		t.Errorf("[env] on the fast path: %s", r)
	}
	manifest("two")
	if again := w.buildNamed("karapace.toml", "bb"); again != id {
		t.Errorf("changing [env] changed the environment id: %s -> %s", id, again)
	}
	if r := w.ok(probe...); r.stdout != "two\n" {
		t.Errorf("[env] after the change: %s", r)
	}
	if r := w.ok("exec", "-e", "GREETING=three", "bb", "--", "/bin/sh", "-c", "echo $GREETING"); r.stdout != "three\n" {
		t.Errorf("exec -e over [env]: %s", r)
	}
	releaseKeepers(t, w.store)
}
