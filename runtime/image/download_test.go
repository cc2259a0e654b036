package image

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
)

func blob(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{1, 2, 3})
	r.Read(b)
	return b
}

// recorder counts requests and remembers their Range headers.
type recorder struct {
	mu     sync.Mutex
	n      int
	ranges []string
}

func (r *recorder) add(req *http.Request) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	r.ranges = append(r.ranges, req.Header.Get("Range"))
	return r.n
}

func testCache(t *testing.T, opts ...Option) *Cache {
	return NewCache(t.TempDir(), append([]Option{WithRetry(4, 5*time.Millisecond), WithStallTimeout(2 * time.Second)}, opts...)...)
}

func downloadTo(t *testing.T, c *Cache, url string) (schema.Digest, int64, []byte, error) {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "dl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var last int64
	d, n, err := c.download(context.Background(), url, f, func(done, total int64) {
		if done < last {
			t.Errorf("progress went backwards: %d after %d", done, last)
		}
		last = done
	})
	got, _ := os.ReadFile(f.Name())
	return d, n, got, err
}

// cutFirst serves data; the first response stops after cut bytes and drops the
// connection, as a flaky network would.
func cutFirst(data []byte, cut int, rec *recorder, honourRange bool) http.HandlerFunc {
	mod := time.Date(2025, 5, 20, 0, 0, 0, 0, time.UTC)
	return func(w http.ResponseWriter, r *http.Request) {
		n := rec.add(r)
		if !honourRange {
			r.Header.Del("Range")
		}
		if n == 1 {
			w.Header().Set("Content-Length", itoa(len(data)))
			w.Header().Set("Last-Modified", mod.Format(http.TimeFormat))
			w.Header().Set("Accept-Ranges", "bytes")
			w.WriteHeader(http.StatusOK)
			w.Write(data[:cut])
			w.(http.Flusher).Flush()
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return
		}
		http.ServeContent(w, r, "rootfs.tar.xz", mod, bytes.NewReader(data))
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestDownloadResumesAfterDroppedConnection(t *testing.T) {
	data := blob(5<<20 + 123)
	rec := &recorder{}
	srv := httptest.NewServer(cutFirst(data, 3<<20, rec, true))
	defer srv.Close()
	d, n, got, err := downloadTo(t, testCache(t), srv.URL+"/rootfs.tar.xz")
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || !bytes.Equal(got, data) || d != schema.Sum(data) {
		t.Fatalf("got %d bytes, digest %s; want %d, %s", n, d.Short(), len(data), schema.Sum(data).Short())
	}
	if rec.n != 2 || rec.ranges[1] != "bytes=3145728-" {
		t.Errorf("requests %d, ranges %q: want a second request resuming at 3145728", rec.n, rec.ranges)
	}
}

func TestDownloadRestartsWhenRangeIgnored(t *testing.T) {
	data := blob(3<<20 + 7)
	rec := &recorder{}
	srv := httptest.NewServer(cutFirst(data, 1<<20, rec, false))
	defer srv.Close()
	d, n, got, err := downloadTo(t, testCache(t), srv.URL+"/x")
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(data)) || !bytes.Equal(got, data) || d != schema.Sum(data) {
		t.Fatalf("restart after an ignored Range gave %d bytes, digest %s", n, d.Short())
	}
	if rec.n != 2 {
		t.Errorf("requests %d, want 2", rec.n)
	}
}

func TestDownloadHTTPErrors(t *testing.T) {
	for _, tc := range []struct {
		status   int
		requests int // 404 is final; 500 is retried until attempts run out
		notFound bool
	}{{404, 1, true}, {410, 1, true}, {403, 1, false}, {500, 4, false}, {503, 4, false}} {
		rec := &recorder{}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec.add(r)
			http.Error(w, "nope", tc.status)
		}))
		_, _, _, err := downloadTo(t, testCache(t), srv.URL+"/rootfs.tar.xz")
		srv.Close()
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != tc.status || !errors.Is(err, ErrDownload) {
			t.Errorf("%d: err = %v, want *HTTPError wrapping ErrDownload", tc.status, err)
		}
		if errors.Is(err, ErrImageNotFound) != tc.notFound {
			t.Errorf("%d: errors.Is(ErrImageNotFound) = %v", tc.status, !tc.notFound)
		}
		if !strings.Contains(err.Error(), itoa(tc.status)) || !strings.Contains(err.Error(), srv.URL) {
			t.Errorf("%d: message %q should name the status and URL", tc.status, err)
		}
		if rec.n != tc.requests {
			t.Errorf("%d: %d requests, want %d", tc.status, rec.n, tc.requests)
		}
	}
}

func TestDownloadRetriesTransientStatus(t *testing.T) {
	data := blob(100 << 10)
	rec := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec.add(r) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Write(data)
	}))
	defer srv.Close()
	d, _, _, err := downloadTo(t, testCache(t), srv.URL)
	if err != nil || d != schema.Sum(data) || rec.n != 3 {
		t.Errorf("err %v, %d requests", err, rec.n)
	}
}

func TestDownloadStallIsRetried(t *testing.T) {
	data := blob(2 << 20)
	rec := &recorder{}
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec.add(r) == 1 {
			w.Header().Set("Content-Length", itoa(len(data)))
			w.Write(data[:1<<20])
			w.(http.Flusher).Flush()
			select { // hang, sending nothing more
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(data))
	}))
	defer srv.Close()
	start := time.Now()
	d, _, _, err := downloadTo(t, testCache(t, WithStallTimeout(300*time.Millisecond)), srv.URL)
	if err != nil || d != schema.Sum(data) {
		t.Fatalf("err %v", err)
	}
	if rec.n != 2 || time.Since(start) > 10*time.Second {
		t.Errorf("%d requests in %v", rec.n, time.Since(start))
	}
}

func TestDownloadNetworkErrors(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	_, _, _, err := downloadTo(t, testCache(t), tlsSrv.URL+"/x")
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "TLS") {
		t.Errorf("self-signed server: %v, want a TLS error", err)
	}

	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	addr := strings.TrimPrefix(plain.URL, "http://")
	plain.Close() // nothing listens there any more
	_, _, _, err = downloadTo(t, testCache(t), "http://"+addr+"/x")
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "refused") || !strings.Contains(err.Error(), "4 attempts") {
		t.Errorf("closed port: %v, want connection refused after 4 attempts", err)
	}

	_, _, _, err = downloadTo(t, testCache(t), "http://karapace-test.invalid/x")
	if !errors.Is(err, ErrDownload) || !strings.Contains(err.Error(), "DNS lookup") {
		t.Errorf("unknown host: %v, want a DNS error", err)
	}
}

func TestDownloadCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "10000000")
		w.Write(make([]byte, 1000))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	f, _ := os.Create(filepath.Join(t.TempDir(), "dl"))
	defer f.Close()
	start := time.Now()
	_, _, err := testCache(t).download(ctx, srv.URL, f, nil)
	if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
		t.Errorf("err %v after %v, want context.Canceled promptly", err, time.Since(start))
	}
}

func TestParseContentRange(t *testing.T) {
	for in, want := range map[string][3]int64{"bytes 10-99/100": {10, 100, 1}, "bytes 0-0/*": {0, -1, 1}, "bytes x-1/2": {0, 0, 0}, "10-20/30": {0, 0, 0}} {
		s, tot, ok := parseContentRange(in)
		if ok != (want[2] == 1) || (ok && (s != want[0] || tot != want[1])) {
			t.Errorf("parseContentRange(%q) = %d %d %v", in, s, tot, ok)
		}
	}
}
