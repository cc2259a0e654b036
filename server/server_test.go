package server

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/remote/remotetest"
	"github.com/karapace/karapace/schema"
)

func newTestServer(t *testing.T, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	if opts.DataDir == "" {
		opts.DataDir = t.TempDir()
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	return s, hs
}

// The HTTP backend against the real handler over loopback passes the same suite as
// the in-memory backend.
func TestHTTPConformance(t *testing.T) {
	remotetest.Run(t, func(t *testing.T) remotetest.Harness {
		s, hs := newTestServer(t, Options{Token: "tok"})
		b, err := remote.NewHTTP(remote.Config{URL: hs.URL + "/", Token: "tok"}, remote.HTTPOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return remotetest.Harness{Backend: b, Tamper: func(kind remote.Kind, key string, data []byte) {
			if err := os.WriteFile(filepath.Join(s.DataDir(), "blobs", kind.String(), key), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}}
	})
}

func TestParseRoute(t *testing.T) {
	k := strings.Repeat("ab", 32)
	for _, c := range []struct {
		path string
		want route
		code int
	}{
		{"/registry", route{registry: true}, 0},
		{"/health", route{health: true}, 0},
		{"/objects/" + k, route{kind: remote.Object, key: k}, 0},
		{"/layers/" + k, route{kind: remote.Layer, key: k}, 0},
		{"/metadata/" + k, route{kind: remote.Metadata, key: k}, 0},
		{"/objects/", route{kind: remote.Object, list: true}, 0},
		{"/layers", route{kind: remote.Layer, list: true}, 0},
		{"/blobs/Object/" + k, route{kind: remote.Object, key: k}, 0},
		{"/blobs/Metadata", route{kind: remote.Metadata, list: true}, 0},
		{"/blobs/object/" + k, route{}, 404},
		{"/Objects/" + k, route{}, 404},
		{"/objects/../../etc/passwd", route{}, 400},
		{"/objects/%2e%2e%2fregistry.json", route{}, 400},
		{"/objects//etc/passwd", route{}, 400},
		{"/metadata/" + k + "/x", route{}, 400},
		{"/objects/" + strings.ToUpper(k), route{}, 400},
		{"/objects/" + k[:63], route{}, 400},
		{"/registry/", route{}, 404},
		{"objects/" + k, route{}, 404},
		{"/", route{}, 404},
		{"", route{}, 404},
	} {
		got, err := parseRoute(c.path)
		if c.code == 0 {
			if err != nil || got != c.want {
				t.Errorf("parseRoute(%q) = %+v, %v; want %+v", c.path, got, err, c.want)
			}
			continue
		}
		if err == nil || status(err) != c.code {
			t.Errorf("parseRoute(%q) = %+v, %v; want status %d", c.path, got, err, c.code)
		}
	}
}

// rawRequest sends exactly these bytes, so that no client library cleans the path.
func rawRequest(t *testing.T, addr, req string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", req, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestPathTraversalRefused(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	secret := filepath.Join(root, "secret")
	os.WriteFile(secret, []byte("top secret"), 0o600)
	_, hs := newTestServer(t, Options{DataDir: data})
	addr := strings.TrimPrefix(hs.URL, "http://")
	targets := []string{
		"/objects/../../secret", "/objects/..%2f..%2fsecret", "/objects/%2e%2e/%2e%2e/secret",
		"/objects/%2e%2e%2f%2e%2e%2fsecret", "/blobs/Object/../../../secret", "/metadata/..%2F..%2Fsecret",
		"/objects/" + secret, "/objects//" + secret, "/layers/.%2e/.%2e/secret", "/objects/..\\..\\secret",
		"/../secret", "/objects/../registry.json",
	}
	for _, tg := range targets {
		for _, m := range []string{"GET", "HEAD"} {
			code, body := rawRequest(t, addr, m+" "+tg+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			if code == 200 || strings.Contains(body, "top secret") {
				t.Errorf("%s %s = %d %q", m, tg, code, body)
			}
		}
		code, _ := rawRequest(t, addr, "PUT "+tg+" HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\npwnd")
		if code == 200 {
			t.Errorf("PUT %s = %d", tg, code)
		}
	}
	if b, _ := os.ReadFile(secret); string(b) != "top secret" {
		t.Fatalf("secret changed: %q", b)
	}
	// Nothing but the layout was created anywhere.
	var files []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if len(files) != 1 {
		t.Fatalf("files after the attack: %v", files)
	}
}

func TestAuth(t *testing.T) {
	_, hs := newTestServer(t, Options{Token: "right"})
	for _, c := range []struct {
		header string
		code   int
	}{
		{"", 401}, {"Bearer wrong", 401}, {"Bearer righ", 401}, {"Bearer rightt", 401}, {"Basic right", 401},
		{"bearer right", 401}, {"Bearer right", 200},
	} {
		for _, path := range []string{"/health", "/objects/", "/registry"} {
			req, _ := http.NewRequest("GET", hs.URL+path, nil)
			if c.header != "" {
				req.Header.Set("Authorization", c.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := c.code
			if want == 200 && path == "/registry" {
				want = 404 // authorized, but there is no registry yet
			}
			if resp.StatusCode != want {
				t.Errorf("GET %s with %q = %d, want %d", path, c.header, resp.StatusCode, want)
			}
			if want == 401 && resp.Header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
		}
	}
	ctx := context.Background()
	good, _ := remote.NewHTTP(remote.Config{URL: hs.URL, Token: "right"}, remote.HTTPOptions{})
	if good.UploadsVerified() {
		t.Fatal("UploadsVerified before any response")
	}
	if _, err := good.HasBlob(ctx, remote.Object, strings.Repeat("0", 64)); err != nil || !good.UploadsVerified() {
		t.Fatalf("the server did not announce that it verifies uploads (%v)", err)
	}
	bad, _ := remote.NewHTTP(remote.Config{URL: hs.URL, Token: "wrong"}, remote.HTTPOptions{})
	if _, err := bad.HasBlob(ctx, remote.Object, strings.Repeat("0", 64)); err == nil || !isUnauthorized(err) {
		t.Fatalf("HasBlob with a wrong token: %v", err)
	}
}

func isUnauthorized(err error) bool {
	var he *remote.HTTPError
	return errorsAs(err, &he) && he.Status == 401
}

func TestProtocolHeaderAndMethods(t *testing.T) {
	_, hs := newTestServer(t, Options{})
	do := func(method, path string, hdr map[string]string, body string) *http.Response {
		req, _ := http.NewRequest(method, hs.URL+path, strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := do("GET", "/objects/", map[string]string{remote.ProtocolHeader: "2"}, ""); r.StatusCode != 400 {
		t.Errorf("protocol 2: %d", r.StatusCode)
	}
	if r := do("GET", "/objects/", map[string]string{remote.ProtocolHeader: "1"}, ""); r.StatusCode != 200 {
		t.Errorf("protocol 1: %d", r.StatusCode)
	}
	if r := do("GET", "/objects/", nil, ""); r.StatusCode != 200 {
		t.Errorf("no protocol header (the original server's clients may omit it): %d", r.StatusCode)
	}
	if r := do("DELETE", "/objects/"+strings.Repeat("0", 64), nil, ""); r.StatusCode != 405 {
		t.Errorf("DELETE: %d", r.StatusCode)
	}
	if r := do("HEAD", "/health", nil, ""); r.StatusCode != 200 {
		t.Errorf("HEAD /health: %d", r.StatusCode)
	}
	if r := do("PUT", "/registry", nil, "not json"); r.StatusCode != 400 {
		t.Errorf("PUT invalid registry: %d", r.StatusCode)
	}
	d := schema.SumString("x").String()
	if r := do("PUT", "/objects/"+d, nil, "y"); r.StatusCode != 400 || r.Header.Get(remote.ErrorClassHeader) != "integrity" {
		t.Errorf("PUT key mismatch: %d %q", r.StatusCode, r.Header.Get(remote.ErrorClassHeader))
	}
}

func TestSizeLimits(t *testing.T) {
	s, hs := newTestServer(t, Options{MaxObjectBytes: 1000, MaxMetadataBytes: 100})
	c, _ := remote.NewHTTP(remote.Config{URL: hs.URL}, remote.HTTPOptions{})
	ctx := context.Background()
	big := bytes.Repeat([]byte("x"), 1001)
	err := c.PutBlob(ctx, remote.Object, schema.Sum(big).String(), bytes.NewReader(big), int64(len(big)))
	var he *remote.HTTPError
	if !errorsAs(err, &he) || he.Status != 413 {
		t.Fatalf("object over the limit: %v", err)
	}
	// Unknown length (chunked): the limit still holds.
	err = c.PutBlob(ctx, remote.Object, schema.Sum(big).String(), struct{ io.Reader }{bytes.NewReader(big)}, -1)
	if !errorsAs(err, &he) || he.Status != 413 {
		t.Fatalf("chunked object over the limit: %v", err)
	}
	ents, _ := os.ReadDir(filepath.Join(s.DataDir(), "blobs", "Object"))
	if len(ents) != 0 {
		t.Fatalf("left in the data dir: %v", ents)
	}
	ok := bytes.Repeat([]byte("y"), 1000)
	if err := c.PutBlob(ctx, remote.Object, schema.Sum(ok).String(), bytes.NewReader(ok), int64(len(ok))); err != nil {
		t.Fatalf("object at the limit: %v", err)
	}
}

// The data directory keeps the original server's layout, so either server can take over
// the other's directory.
func TestOnDiskLayout(t *testing.T) {
	s, hs := newTestServer(t, Options{})
	c, _ := remote.NewHTTP(remote.Config{URL: hs.URL}, remote.HTTPOptions{})
	ctx := context.Background()
	obj := []byte("obj")
	k := schema.Sum(obj).String()
	if err := c.PutBlob(ctx, remote.Object, k, bytes.NewReader(obj), 3); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.DataDir(), "blobs", "Object", k)); err != nil || !bytes.Equal(b, obj) {
		t.Fatalf("blobs/Object/<key>: %q %v", b, err)
	}
	if err := remote.Publish(ctx, c, remote.Ref{Name: "a", Tag: "latest"}, remote.Entry{EnvID: k, ShortID: k[:12], PushedAt: "t"}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(s.DataDir(), "registry.json")); err != nil || !bytes.Contains(b, []byte(`"a@latest"`)) {
		t.Fatalf("registry.json: %q %v", b, err)
	}
	// A temp file left by a crash is neither listed nor served.
	os.WriteFile(filepath.Join(s.DataDir(), "blobs", "Object", ".tmp-abc"), []byte("x"), 0o644)
	keys, err := c.ListBlobs(ctx, remote.Object)
	if err != nil || len(keys) != 1 || keys[0] != k {
		t.Fatalf("list = %v, %v", keys, err)
	}
	// The original server's canonical route reads the same blob.
	resp, err := http.Get(hs.URL + "/blobs/Object/" + k)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(b, obj) {
		t.Fatalf("/blobs/Object/<key> = %d %q", resp.StatusCode, b)
	}
}

// The original client's requests, byte for byte as it sends them: no conditions on the
// registry, a tag key without "@" (its --tag bug), pretty metadata.
func TestOriginalClientRequests(t *testing.T) {
	_, hs := newTestServer(t, Options{})
	id := schema.SumString("env").String()
	reg := "{\n  \"entries\": {\n    \"foo\": {\n      \"env_id\": \"" + id + "\",\n      \"short_id\": \"" + id[:12] + "\",\n      \"name\": \"foo\",\n      \"pushed_at\": \"2026-01-01T00:00:00.123456789+00:00\"\n    }\n  }\n}"
	meta := "{\n  \"env_id\": \"" + id + "\",\n  \"short_id\": \"" + id[:12] + "\",\n  \"name\": null\n}"
	for _, c := range []struct{ method, path, ctype, body string }{
		{"PUT", "/metadata/" + id, "application/octet-stream", meta},
		{"PUT", "/registry", "application/json", reg},
		{"GET", "/registry", "", ""},
		{"GET", "/objects/", "", ""},
		{"GET", "/metadata/" + id, "", ""},
		{"HEAD", "/metadata/" + id, "", ""},
	} {
		req, _ := http.NewRequest(c.method, hs.URL+c.path, strings.NewReader(c.body))
		req.Header.Set("X-Karapace-Protocol", "1")
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("%s %s = %d %s", c.method, c.path, resp.StatusCode, b)
		}
		if c.method == "GET" && c.path == "/registry" && string(b) != reg {
			t.Fatalf("registry not returned verbatim: %s", b)
		}
		if c.method == "PUT" && string(b) != "ok" {
			t.Fatalf("PUT answer %q, want ok", b)
		}
	}
	// Our client finds the original's bare "foo" key for `pull foo`, and ids directly.
	c, _ := remote.NewHTTP(remote.Config{URL: hs.URL}, remote.HTTPOptions{})
	if got, err := remote.Resolve(context.Background(), c, "foo"); err != nil || got.String() != id {
		t.Fatalf("resolve foo: %v", err)
	}
	if got, err := remote.Resolve(context.Background(), c, id); err != nil || got.String() != id {
		t.Fatalf("resolve by id: %v", err)
	}
}
