package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/remote"
)

// FuzzServe throws arbitrary requests at the handler: it must never panic, never answer
// outside its status vocabulary, and never touch anything outside its data directory.
func FuzzServe(f *testing.F) {
	k := strings.Repeat("0", 64)
	for _, s := range []struct{ m, p, body string }{
		{"GET", "/objects/" + k, ""}, {"PUT", "/objects/" + k, "x"}, {"HEAD", "/layers/" + k, ""},
		{"PUT", "/metadata/" + k, `{"env_id":"` + k + `"}`}, {"GET", "/objects/", ""},
		{"PUT", "/registry", `{"entries":{}}`}, {"GET", "/registry", ""}, {"GET", "/objects/../../canary", ""},
		{"PUT", "/objects/%2e%2e%2fcanary", "pwnd"}, {"PUT", "/blobs/Object/../../canary", "pwnd"},
		{"PUT", "/registry", `{"entries":{"a@b":{"env_id":"` + k + `","short_id":"","pushed_at":""}}}`},
	} {
		f.Add(s.m, s.p, []byte(s.body))
	}
	root := f.TempDir()
	canary := filepath.Join(root, "canary")
	if err := os.WriteFile(canary, []byte("canary"), 0o644); err != nil {
		f.Fatal(err)
	}
	s, err := New(Options{DataDir: filepath.Join(root, "data"), MaxObjectBytes: 1 << 16, MaxRegistryBytes: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	allowed := map[int]bool{200: true, 400: true, 401: true, 404: true, 405: true, 412: true, 413: true}
	f.Fuzz(func(t *testing.T, method, target string, body []byte) {
		u, err := url.ParseRequestURI(target)
		if err != nil || method == "" || strings.ContainsAny(method, " \t\r\n") {
			return
		}
		req := &http.Request{Method: method, URL: u, RequestURI: target, Header: http.Header{},
			Body: httptestBody(body), ContentLength: int64(len(body)), Host: "x", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("%s %q -> %d %q", method, target, rec.Code, rec.Body.String())
		}
		if b, err := os.ReadFile(canary); err != nil || string(b) != "canary" {
			t.Fatalf("%s %q touched the canary", method, target)
		}
		ents, _ := os.ReadDir(root)
		if len(ents) != 2 {
			t.Fatalf("%s %q created files outside the data dir: %v", method, target, ents)
		}
	})
}

func httptestBody(b []byte) *readCloser { return &readCloser{bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// FuzzRegistry: whatever ParseRegistry accepts re-encodes to a document it accepts
// again, with the same entries.
func FuzzRegistry(f *testing.F) {
	k := strings.Repeat("a", 64)
	f.Add([]byte(`{"entries":{}}`))
	f.Add([]byte(`{"entries":{"n@t":{"env_id":"` + k + `","short_id":"aaaaaaaaaaaa","name":"n","pushed_at":"2025"}}}`))
	f.Add([]byte(`{"entries":{"n@t":{"env_id":"` + k + `","extra":1}},"x":[]}`))
	f.Add([]byte(`{"entries":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := remote.ParseRegistry(data)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		r2, err := remote.ParseRegistry(out)
		if err != nil {
			t.Fatalf("re-parse of %q: %v", out, err)
		}
		out2, _ := r2.Marshal()
		if !bytes.Equal(out, out2) {
			t.Fatalf("not stable:\n%s\n%s", out, out2)
		}
	})
}

// FuzzParseRoute: a key that parses is always 64 lowercase hex characters.
func FuzzParseRoute(f *testing.F) {
	f.Add("/objects/" + strings.Repeat("0", 64))
	f.Add("/blobs/Layer/../x")
	f.Fuzz(func(t *testing.T, p string) {
		rt, err := parseRoute(p)
		if err != nil || rt.key == "" {
			return
		}
		if _, err := remote.ParseKey(rt.key); err != nil || strings.ContainsAny(rt.key, "./%\\") {
			t.Fatalf("parseRoute(%q) accepted key %q", p, rt.key)
		}
	})
}
