package cli

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/karapace/karapace/core"
)

// startServer runs the karapace-server binary on a free loopback port and returns its URL.
func startServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(filepath.Dir(binary), "karapace-server")
	if _, err := os.Stat(bin); err != nil {
		build := exec.Command("go", "build", "-o", bin, "../server/cmd/karapace-server")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building karapace-server: %v\n%s", err, out)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	srv := exec.Command(bin, "--port", fmt.Sprint(port), "--data-dir", t.TempDir())
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	waitFor(t, 10*time.Second, "karapace-server to listen", func() bool {
		resp, err := http.Get(url + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return true
	})
	return url
}

// push from one store, pull into another, through a real server on loopback.
func TestCLIPushPull(t *testing.T) {
	url := startServer(t)
	alice := newWorld(t)
	alice.manifest("karapace.toml", "rolling", "git")
	id := alice.buildNamed("karapace.toml", "demo")

	var pushed pushResult
	r := alice.jsonOK(&pushed, "push", "demo", "--remote", url, "--tag", "demo@v1")
	alice.golden("push.json", r.stdout)
	if pushed.EnvID != id || pushed.ObjectsPushed == 0 || pushed.LayersPushed == 0 {
		t.Errorf("push: %s", r)
	}
	// A second push skips everything.
	r = alice.ok("push", "demo", "--remote", url)
	alice.golden("push-again.txt", r.stdout)
	// A bare tag means name@latest (the original's B19).
	r = alice.ok("push", "demo", "--remote", url, "--tag", "demo")
	alice.golden("push-tag.txt", r.stdout)

	bob := newWorld(t)
	var pulled pullResult
	r = bob.jsonOK(&pulled, "pull", "demo@v1", "--remote", url)
	bob.golden("pull.json", r.stdout)
	if pulled.EnvID != id || pulled.ObjectsPulled == 0 {
		t.Errorf("pull: %s", r)
	}
	var e core.Env
	bob.jsonOK(&e, "inspect", id)
	if e.EnvID.String() != id {
		t.Errorf("pulled env: %+v", e)
	}
	var v verifyResult
	bob.jsonOK(&v, "verify-store")
	if v.Failed != 0 {
		t.Errorf("verify after pull: %+v", v)
	}
	// The configured remote is used when --remote is absent.
	cfg := filepath.Join(bob.dir, "..", "config", "karapace", "remote.json")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte(`{"url": "`+url+`"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	r = bob.ok("pull", id)
	bob.golden("pull-again.txt", r.stdout)
	bob.fail(1, []string{"error: "}, "pull", "nothing@here")
	var latest pullResult
	bob.jsonOK(&latest, "pull", "demo")
	if latest.EnvID != id {
		t.Errorf("pull demo (demo@latest): %+v", latest)
	}
}
