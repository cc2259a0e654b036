package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/schema"
)

// slowPut is a request on a raw connection whose body goes out one byte per every,
// at most n bytes, until the server answers.
type slowPut struct {
	conn net.Conn
	resp chan *http.Response
	errc chan error
	stop chan struct{}
}

// startSlowPut dials 127.0.0.1 and sends raw (the request's head and the start of its
// body, if any), then the rest of the body slowly; every <= 0 sends no more.
func startSlowPut(t *testing.T, srv *proc, raw string, n int, every time.Duration) *slowPut {
	t.Helper()
	conn, err := net.DialTimeout("tcp", strings.TrimPrefix(srv.url, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second)) // no test waits longer
	if _, err := io.WriteString(conn, raw); err != nil {
		t.Fatal(err)
	}
	p := &slowPut{conn: conn, resp: make(chan *http.Response, 1), errc: make(chan error, 1), stop: make(chan struct{})}
	go func() {
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			p.errc <- err
			return
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body = io.NopCloser(bytes.NewReader(b))
		p.resp <- resp
	}()
	if every > 0 {
		go func() {
			for range n {
				select {
				case <-p.stop:
					return
				case <-time.After(every):
				}
				if _, err := conn.Write([]byte{'x'}); err != nil {
					return
				}
			}
		}()
	}
	return p
}

// wait returns the answer, its body and how long it took from start.
func (p *slowPut) wait(t *testing.T, start time.Time) (*http.Response, string, time.Duration) {
	t.Helper()
	defer close(p.stop)
	select {
	case resp := <-p.resp:
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b), time.Since(start)
	case err := <-p.errc:
		t.Fatalf("no answer: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("no answer in 20s")
	}
	return nil, "", 0
}

// temps lists the temp files of the data directory and its blob directories.
func temps(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	for _, d := range []string{data, filepath.Join(data, "blobs", "Object"), filepath.Join(data, "blobs", "Layer"), filepath.Join(data, "blobs", "Metadata")} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".tmp-") {
				out = append(out, filepath.Join(d, e.Name()))
			}
		}
	}
	return out
}

// waitTemps polls (every 20 ms, for at most 5 s) until the data directory holds want
// temp files.
func waitTemps(t *testing.T, data string, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := temps(t, data)
		if len(got) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("temp files: %v, want %d", got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// putHead is the head of a PUT with a Content-Length, through the blank line.
func putHead(path string, length int) string {
	return fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: x\r\nX-Karapace-Protocol: 1\r\nContent-Length: %d\r\n\r\n", path, length)
}

// A body slower than --min-upload-rate over --upload-rate-window is cut off with 408
// within about one window, whether it trickles (1 byte per 200 ms) or stalls (nothing
// after the headers), for a blob and for the registry; every temp file is gone after.
func TestE2ETrickledUploadsCutOff(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, nil, "--data-dir", data, "--min-upload-rate", "1000", "--upload-rate-window", "1s")
	key := schema.SumString("trickle").String()
	start := time.Now()
	ps := []*slowPut{
		startSlowPut(t, srv, putHead("/objects/"+key, 1000), 100, 200*time.Millisecond),
		startSlowPut(t, srv, putHead("/layers/"+key, 1000), 0, 0),
		startSlowPut(t, srv, putHead("/registry", 1000), 100, 200*time.Millisecond),
		// Chunked: one chunk of 0x64 bytes announced, its bytes trickling.
		startSlowPut(t, srv, "PUT /objects/"+key+" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n", 100, 200*time.Millisecond),
	}
	waitTemps(t, data, 3) // the two objects and the layer stream into temp files; the registry is read into memory
	for i, p := range ps {
		resp, body, took := p.wait(t, start)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "too slow") {
			t.Errorf("upload %d: %d %q, want 408 too slow", i, resp.StatusCode, body)
		}
		if took > 4*time.Second {
			t.Errorf("upload %d cut off after %s, want about 1s", i, took)
		}
	}
	waitTemps(t, data, 0)
	if ents, _ := os.ReadDir(filepath.Join(data, "blobs", "Object")); len(ents) != 0 {
		t.Fatalf("left in blobs/Object: %v", ents)
	}
	srv.settledCount("PUT", len(ps)) // the server logs a request after answering it
	if n := strings.Count(srv.log.String(), "status=408"); n != len(ps) {
		t.Fatalf("%d requests logged with 408, want %d:\n%s", n, len(ps), srv.log.String())
	}
	// The server still takes normal uploads at full speed, and a 4 MiB body easily beats
	// 1000 bytes/s.
	big := bytes.Repeat([]byte("karapace"), 512<<10)
	c := client(t, srv.url, "")
	if err := c.PutBlob(context.Background(), remote.Object, schema.Sum(big).String(), bytes.NewReader(big), int64(len(big))); err != nil {
		t.Fatalf("normal upload: %v", err)
	}
}

// --upload-timeout bounds a body whatever its rate.
func TestE2EUploadTimeout(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, nil, "--data-dir", data, "--min-upload-rate", "0", "--upload-timeout", "1s")
	start := time.Now()
	p := startSlowPut(t, srv, putHead("/objects/"+schema.SumString("x").String(), 100), 100, 100*time.Millisecond)
	resp, body, took := p.wait(t, start)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "not complete after") || took > 4*time.Second {
		t.Fatalf("%d %q after %s, want 408 not complete after about 1s", resp.StatusCode, body, took)
	}
	waitTemps(t, data, 0)
}

// A body that no handler reads (here: a request refused for its token) is bounded too:
// the server discards it under the same deadline, then closes the connection.
func TestE2EUnreadBodyBounded(t *testing.T) {
	srv := startServer(t, nil, "--data-dir", t.TempDir(), "--token", "s3cret", "--min-upload-rate", "1000", "--upload-rate-window", "1s")
	start := time.Now()
	p := startSlowPut(t, srv, putHead("/objects/"+schema.SumString("x").String(), 1000), 100, 200*time.Millisecond)
	resp, _, _ := p.wait(t, start)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", resp.StatusCode)
	}
	// The response is read; the server closes once the discard hits the deadline.
	_ = p.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := p.conn.Read(make([]byte, 1))
	if took := time.Since(start); err == nil || took > 5*time.Second {
		t.Fatalf("connection still open after %s (read: %v)", took, err)
	}
}

// With --max-uploads 2, a third upload while two are in progress is refused with 503
// and Retry-After; reads still work; the held uploads' temp files go when their clients
// go, and the slots come back.
func TestE2EUploadCap(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, nil, "--data-dir", data, "--max-uploads", "2", "--min-upload-rate", "0")
	key := schema.SumString("held").String()
	var held []*slowPut
	for range 2 {
		p := startSlowPut(t, srv, putHead("/objects/"+key, 1000)+"xx", 0, 0)
		held = append(held, p)
	}
	waitTemps(t, data, 2)
	for _, path := range []string{"/objects/" + schema.SumString("third").String(), "/registry"} {
		start := time.Now()
		p := startSlowPut(t, srv, putHead(path, 2)+"{}", 0, 0)
		resp, body, _ := p.wait(t, start)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "5" || !strings.Contains(body, "too many uploads") {
			t.Fatalf("PUT %s over the cap: %d %q Retry-After %q, want 503", path, resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	resp, err := http.Get(srv.url + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET /health while uploads are full: %v %v", resp, err)
	}
	resp.Body.Close()
	for _, p := range held {
		p.conn.Close()
	}
	waitTemps(t, data, 0)
	srv.settledCount("PUT", 4) // logged after the slot is released: the 2 held, the 2 refused
	// Both slots are free again: two uploads at once pass.
	c := client(t, srv.url, "")
	errc := make(chan error, 2)
	for i := range 2 {
		go func() {
			b := bytes.Repeat([]byte{byte(i)}, 1<<20)
			errc <- c.PutBlob(context.Background(), remote.Object, schema.Sum(b).String(), bytes.NewReader(b), int64(len(b)))
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatalf("upload after the held ones went: %v", err)
		}
	}
}

// PUT /registry takes only keys that the client's ParseRef takes (plus those the stored
// document already has); others are refused with 400 and the document is unchanged.
func TestE2ERegistryKeys(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, nil, "--data-dir", data)
	id := schema.SumString("env").String()
	doc := func(keys ...string) string {
		var es []string
		for _, k := range keys {
			es = append(es, fmt.Sprintf(`%q:{"env_id":%q,"short_id":%q,"pushed_at":"2026-01-01T00:00:00.000000000+00:00"}`, k, id, id[:12]))
		}
		return `{"entries":{` + strings.Join(es, ",") + `}}`
	}
	put := func(body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPut, srv.url+"/registry", strings.NewReader(body))
		req.Header.Set("X-Karapace-Protocol", "1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := put(doc("webapp@latest", "webapp", "a@b@c")); code != 200 {
		t.Fatalf("good keys: %d %s", code, body)
	}
	for _, k := range []string{"../evil@latest", "../../etc/passwd", "my app@latest", "app@my tag", "a/b@c", `a\b@c`,
		"app@", "@latest", "app@v1\u00a0", strings.Repeat("n", 129) + "@t"} {
		code, body := put(doc("webapp@latest", k))
		if code != 400 || !strings.Contains(body, "registry key") || !strings.Contains(body, "invalid reference") {
			t.Errorf("key %q: %d %q, want 400 invalid reference", k, code, body)
		}
	}
	b, _ := os.ReadFile(filepath.Join(data, "registry.json"))
	r, err := remote.ParseRegistry(b)
	if err != nil || len(r.Entries) != 3 {
		t.Fatalf("registry after the refusals: %s %v", b, err)
	}
	// A key the original client wrote stays writable; no new bad key joins it.
	if err := os.WriteFile(filepath.Join(data, "registry.json"), []byte(doc("old key@v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, body := put(doc("old key@v1", "new@latest")); code != 200 {
		t.Fatalf("grandfathered key: %d %s", code, body)
	}
	if code, _ := put(doc("old key@v1", "new@latest", "bad key@v1")); code != 400 {
		t.Fatalf("new bad key beside a grandfathered one: %d", code)
	}
	// The client refuses the same keys before sending.
	for _, k := range []string{"../evil", "my app"} {
		if _, err := remote.ParseRef(k); err == nil {
			t.Errorf("client ParseRef(%q) accepted", k)
		}
	}
}

func TestE2ELimitFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--max-uploads", "0"}, {"--min-upload-rate", "-1"}, {"--upload-rate-window", "0s"}, {"--upload-timeout", "-1s"},
	} {
		err := run(context.Background(), append([]string{"--data-dir", t.TempDir(), "--port", "0"}, args...), func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "usage") {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
