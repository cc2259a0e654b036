package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/remote/remotetest"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// serverBin is the karapace-server binary built by TestMain.
var serverBin string

func TestMain(m *testing.M) {
	if os.Getenv("KARAPACE_TEST_PULL_CHILD") != "" {
		os.Exit(pullChild())
	}
	dir, err := os.MkdirTemp("", "karapace-server-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBin = filepath.Join(dir, "karapace-server")
	build := exec.Command("go", "build", "-o", serverBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building karapace-server:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a child's stderr.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type proc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	url  string
	done chan error
}

var addrRE = regexp.MustCompile(`msg=listening addr=(\S+)`)

// startServer runs the built binary on a free port and waits until it listens. The
// cleanup stops it by PID.
func startServer(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"--port", "0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	cmd.Stderr = pw
	p := &proc{cmd: cmd, log: &syncBuffer{}, done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			line := sc.Text()
			p.log.Write([]byte(line + "\n"))
			if m := addrRE.FindStringSubmatch(line); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
	}()
	go func() { p.done <- cmd.Wait(); pw.Close() }()
	t.Cleanup(func() { p.stop(t) })
	select {
	case a := <-addr:
		p.url = "http://" + a
	case err := <-p.done:
		p.done <- err
		t.Fatalf("server exited at start: %v\n%s", err, p.log.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("server did not start:\n%s", p.log.String())
	}
	return p
}

// stop sends SIGTERM to the server's PID and waits; SIGKILL if it hangs.
func (p *proc) stop(t testing.TB) error {
	if p.cmd.ProcessState != nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("server ignored SIGTERM for 15s")
		return <-p.done
	}
}

func (p *proc) count(method string) int { return strings.Count(p.log.String(), "method="+method+" ") }

// settledCount waits until the server has logged at least want requests of method
// (it logs each request after answering it, so the client can be a line ahead), then
// a moment more for any unexpected extra line, and returns the count.
func (p *proc) settledCount(method string, want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for p.count(method) < want && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	return p.count(method)
}

func client(t testing.TB, url, token string) *remote.HTTP {
	t.Helper()
	c, err := remote.NewHTTP(remote.Config{URL: url, Token: token}, remote.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections) // runs before the server's stop (cleanups are LIFO)
	return c
}

func TestE2EPushRepushPull(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, nil, "--data-dir", t.TempDir())
	c := client(t, srv.url, "")
	f := remotetest.NewFixture(t, "webapp", 5<<20+17)
	ref, err := remote.ParseRef("webapp") // push --tag webapp means webapp@latest
	if err != nil {
		t.Fatal(err)
	}
	res, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{Tag: &ref})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if res.ObjectsPushed != 3 || res.LayersPushed != 2 {
		t.Fatalf("push: %+v", res)
	}
	putsBefore := srv.settledCount("PUT", 3+2+1+1)
	if putsBefore != 3+2+1+1 {
		t.Fatalf("first push made %d PUTs, want 7 (3 objects, 2 layers, metadata, registry):\n%s", putsBefore, srv.log.String())
	}
	res, err = remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{})
	if err != nil {
		t.Fatalf("re-push: %v", err)
	}
	if n := srv.settledCount("PUT", putsBefore+1) - putsBefore; n != 1 || res.ObjectsSkipped != 3 || res.LayersSkipped != 2 {
		t.Fatalf("re-push sent %d blobs (want only the metadata): %+v", n, res)
	}
	for _, r := range []string{"webapp@latest", "webapp", f.ID.String()} {
		id, err := remote.Resolve(ctx, c, r)
		if err != nil || id != f.ID {
			t.Fatalf("resolve %q: %s, %v", r, id.Short(), err)
		}
		dst := remotetest.EmptyStore(t)
		if _, err := remote.Pull(ctx, c, remote.NewLocal(dst, nil), id, remote.PullOptions{}); err != nil {
			t.Fatalf("pull %q: %v", r, err)
		}
		remotetest.CheckPulled(t, f.Store, dst, f.ID)
	}
	// Restart on the same data dir: everything is still there.
	dir := srv.cmd.Args[len(srv.cmd.Args)-1]
	c.CloseIdleConnections()
	if err := srv.stop(t); err != nil {
		t.Fatalf("server exit after SIGTERM: %v", err)
	}
	srv2 := startServer(t, nil, "--data-dir", dir)
	c2 := client(t, srv2.url, "")
	id, err := remote.Resolve(ctx, c2, "webapp")
	if err != nil || id != f.ID {
		t.Fatalf("resolve after restart: %v", err)
	}
	dst := remotetest.EmptyStore(t)
	if _, err := remote.Pull(ctx, c2, remote.NewLocal(dst, nil), id, remote.PullOptions{}); err != nil {
		t.Fatalf("pull after restart: %v", err)
	}
	remotetest.CheckPulled(t, f.Store, dst, f.ID)
}

func TestE2ECorruptBlobOnServer(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	srv := startServer(t, nil, "--data-dir", data)
	c := client(t, srv.url, "")
	f := remotetest.NewFixture(t, "corrupt", 2<<20)
	if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(data, "blobs", "Object", f.TarKey.String())
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[12345] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	dst := remotetest.EmptyStore(t)
	_, err = remote.Pull(ctx, c, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{})
	if !errors.Is(err, remote.ErrIntegrity) || !strings.Contains(err.Error(), "integrity") {
		t.Fatalf("pull of a corrupted blob: %v", err)
	}
	if ok, _ := dst.Envs.Exists(ctx, f.ID); ok {
		t.Fatal("env visible after a failed pull")
	}
	if objs, _ := dst.Objects.List(ctx); len(objs) != 0 {
		t.Fatalf("objects visible after a failed pull: %v", objs)
	}
}

func TestE2EAttacksRefused(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	secret := filepath.Join(root, "secret")
	os.WriteFile(secret, []byte("secret"), 0o600)
	srv := startServer(t, nil, "--data-dir", data)
	addr := strings.TrimPrefix(srv.url, "http://")
	raw := func(req string) int {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, req)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("%q: %v", req, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, target := range []string{"/objects/../../secret", "/objects/%2e%2e/%2e%2e/secret", "/objects/%2e%2e%2f%2e%2e%2fsecret",
		"/objects/" + secret, "/metadata/..%2f..%2fsecret", "/blobs/Object/../../../secret", "/layers/....//secret"} {
		if code := raw("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); code == 200 {
			t.Errorf("GET %s = 200", target)
		}
		if code := raw("PUT " + target + " HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\npwnd"); code == 200 {
			t.Errorf("PUT %s = 200", target)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "secret" {
		t.Fatal("secret overwritten")
	}
	// A body that does not hash to its key is refused and nothing is stored.
	k := schema.SumString("claimed").String()
	if code := raw("PUT /objects/" + k + " HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nConnection: close\r\n\r\nactual"); code != 400 {
		t.Fatalf("key mismatch PUT = %d, want 400", code)
	}
	if _, err := os.Stat(filepath.Join(data, "blobs", "Object", k)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("mismatched blob stored: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(data, "blobs", "Object")); len(ents) != 0 {
		t.Fatalf("temp files left: %v", ents)
	}
}

func TestE2EToken(t *testing.T) {
	ctx := context.Background()
	for _, how := range []string{"flag", "env"} {
		t.Run(how, func(t *testing.T) {
			var srv *proc
			if how == "flag" {
				srv = startServer(t, nil, "--data-dir", t.TempDir(), "--token", "s3cret")
			} else {
				srv = startServer(t, []string{"KARAPACE_SERVER_TOKEN=s3cret"}, "--data-dir", t.TempDir())
			}
			k := strings.Repeat("0", 64)
			for _, tok := range []string{"", "wrong"} {
				_, err := client(t, srv.url, tok).HasBlob(ctx, remote.Object, k)
				if !errors.Is(err, remote.ErrUnauthorized) {
					t.Fatalf("token %q: %v, want 401", tok, err)
				}
				var he *remote.HTTPError
				if !errors.As(err, &he) || he.Status != 401 {
					t.Fatalf("token %q: %v", tok, err)
				}
			}
			f := remotetest.NewFixture(t, "auth", 1000)
			c := client(t, srv.url, "s3cret")
			if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
				t.Fatalf("push with the right token: %v", err)
			}
		})
	}
}

func TestE2EConcurrentPushes(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, nil, "--data-dir", t.TempDir())
	var fs []remotetest.Fixture
	for i := range 4 {
		fs = append(fs, remotetest.NewFixture(t, fmt.Sprintf("env%d", i), 256<<10))
	}
	var wg sync.WaitGroup
	for _, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _ := f.Store.Envs.Get(ctx, f.ID)
			ref := remote.Ref{Name: m.Name, Tag: "latest"}
			if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), client(t, srv.url, ""), f.ID, remote.PushOptions{Tag: &ref}); err != nil {
				t.Errorf("push %s: %v", ref, err)
			}
		}()
	}
	wg.Wait()
	c := client(t, srv.url, "")
	for i, f := range fs {
		id, err := remote.Resolve(ctx, c, fmt.Sprintf("env%d", i))
		if err != nil || id != f.ID {
			t.Fatalf("env%d missing from the registry after concurrent pushes: %v", i, err)
		}
	}
}

// pullChild runs in a re-executed test binary: it pulls and blocks forever once the
// first object bytes have arrived, so the parent can SIGKILL it mid-transfer.
func pullChild() int {
	args := strings.Split(os.Getenv("KARAPACE_TEST_PULL_CHILD"), ",")
	id, err := schema.ParseEnvID(args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	st, err := store.Open(context.Background(), args[1], store.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := remote.NewHTTP(remote.Config{URL: args[0]}, remote.HTTPOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var once sync.Once
	_, err = remote.Pull(context.Background(), c, remote.NewLocal(st, nil), id, remote.PullOptions{
		Jobs: 1,
		Progress: func(e remote.Event) {
			if e.Kind == remote.Object && e.Bytes > 1<<20 {
				once.Do(func() { fmt.Println("midway") })
				select {} // wait for SIGKILL
			}
		},
	})
	fmt.Fprintln(os.Stderr, "pull finished:", err)
	return 0
}

func TestE2EKilledPullLeavesNothingVisible(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, nil, "--data-dir", t.TempDir())
	c := client(t, srv.url, "")
	f := remotetest.NewFixture(t, "killed", 8<<20)
	if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := remotetest.EmptyStore(t)
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "KARAPACE_TEST_PULL_CHILD="+srv.url+","+dst.Layout.Root()+","+f.ID.String())
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	child.Stderr = &stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "midway\n" {
		_ = child.Process.Kill()
		_ = child.Wait()
		t.Fatalf("child did not reach the middle of the pull: %q %v\n%s", line, err, stderr.String())
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL by PID
		t.Fatal(err)
	}
	_ = child.Wait()

	if ok, _ := dst.Envs.Exists(ctx, f.ID); ok {
		t.Fatal("env visible after a killed pull")
	}
	for what, list := range map[string]func(context.Context) ([]schema.Digest, error){"objects": dst.Objects.List, "layers": dst.Layers.List} {
		if ds, err := list(ctx); err != nil || len(ds) != 0 {
			t.Fatalf("%s visible after a killed pull: %v %v", what, ds, err)
		}
	}
	rep, err := dst.Verify(ctx)
	if err != nil || !rep.OK() {
		t.Fatalf("store after a killed pull: %+v %v", rep, err)
	}
	// The staged part is only in staging/, where GC collects crash leftovers; a new pull
	// completes normally.
	if _, err := remote.Pull(ctx, c, remote.NewLocal(dst, nil), f.ID, remote.PullOptions{}); err != nil {
		t.Fatalf("pull after the killed one: %v", err)
	}
	remotetest.CheckPulled(t, f.Store, dst, f.ID)
}

func TestE2EStartupFailures(t *testing.T) {
	// Port in use.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := fmt.Sprint(ln.Addr().(*net.TCPAddr).Port)
	for _, c := range []struct {
		args []string
		want string
		code int
	}{
		{[]string{"--port", port, "--data-dir", t.TempDir()}, "cannot listen on 127.0.0.1:" + port, 1},
		{[]string{"--port", "0", "--data-dir", "/proc/karapace-cannot-exist"}, "create data directory", 1},
		{[]string{"--port", "70000"}, "out of range", 2},
		{[]string{"--no-such-flag"}, "flag provided but not defined", 2},
	} {
		cmd := exec.Command(serverBin, c.args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.code || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%v: %v, stderr %q; want exit %d and %q", c.args, err, stderr.String(), c.code, c.want)
		}
	}
}

func TestE2EGracefulShutdown(t *testing.T) {
	srv := startServer(t, nil, "--data-dir", t.TempDir())
	resp, err := http.Get(srv.url + "/health")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != `{"status":"ok"}` {
		t.Fatalf("/health = %q", b)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, srv.log.String())
	}
	if !strings.Contains(srv.log.String(), "msg=stopped") {
		t.Fatalf("no graceful stop in the log:\n%s", srv.log.String())
	}
}
