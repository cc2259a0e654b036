package server

import (
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/remote"
)

// dripReader yields one byte per every, n bytes in all.
type dripReader struct {
	n     int
	every time.Duration
}

func (d *dripReader) Read(p []byte) (int, error) {
	if d.n == 0 {
		return 0, io.EOF
	}
	time.Sleep(d.every)
	d.n--
	p[0] = 'x'
	return 1, nil
}

func (d *dripReader) Close() error { return nil }

// Where the connection takes no deadline (a ResponseWriter without one), the limits
// are still checked after each read. (Over a real connection the deadline cuts off even
// a body that sends nothing: see the karapace-server end-to-end tests.)
func TestDeadlineBodyChecksReads(t *testing.T) {
	for _, c := range []struct {
		name    string
		lim     bodyLimits
		body    *dripReader
		wantErr string
	}{
		{"too slow", newBodyLimits(1000, 100*time.Millisecond, 0), &dripReader{n: 50, every: 10 * time.Millisecond}, "fewer than 100 bytes in 100ms"},
		{"too late", newBodyLimits(-1, 0, 100*time.Millisecond), &dripReader{n: 50, every: 10 * time.Millisecond}, "not complete after"},
		{"fast enough", newBodyLimits(10, 100*time.Millisecond, 0), &dripReader{n: 20, every: time.Millisecond}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := newDeadlineBody(httptest.NewRecorder(), c.body, c.lim, time.Now())
			n, err := io.Copy(io.Discard, b)
			if c.wantErr == "" {
				if err != nil || n != 20 {
					t.Fatalf("read %d, %v", n, err)
				}
				return
			}
			if !errors.Is(err, errTooSlow) || !strings.Contains(err.Error(), c.wantErr) || status(err) != 408 {
				t.Fatalf("read %d, %v; want %q", n, err, c.wantErr)
			}
			if _, again := b.Read(make([]byte, 1)); again != err {
				t.Fatalf("error not sticky: %v", again)
			}
		})
	}
}

func TestBodyLimitsOff(t *testing.T) {
	if !newBodyLimits(-1, time.Second, 0).off() || newBodyLimits(1, time.Second, 0).off() || newBodyLimits(-1, 0, time.Second).off() {
		t.Fatal("off() is wrong")
	}
	if l := newBodyLimits(DefaultMinUploadRate, DefaultUploadRateWindow, 0); l.need != 64<<10*30 {
		t.Fatalf("default need %d", l.need)
	}
	for _, o := range []Options{{MaxUploads: -1}, {UploadRateWindow: -time.Second}, {UploadTimeout: -time.Second}} {
		o.DataDir = t.TempDir()
		if _, err := New(o); !errors.Is(err, ErrSetup) {
			t.Errorf("New(%+v): %v, want ErrSetup", o, err)
		}
	}
}

func TestCheckNewKeys(t *testing.T) {
	k := strings.Repeat("a", 64)
	reg := func(keys ...string) *remote.Registry {
		r := &remote.Registry{Entries: map[string]remote.Entry{}}
		for _, key := range keys {
			r.Entries[key] = remote.Entry{EnvID: k}
		}
		return r
	}
	stored := []byte(`{"entries":{"old one@v1":{"env_id":"` + k + `"}}}`)
	for _, c := range []struct {
		doc *remote.Registry
		cur []byte
		ok  bool
	}{
		{reg("app@latest", "app", "app@1.2.3", "a@b@c", "ünï@cödé"), nil, true},
		{reg("../x@latest"), nil, false},
		{reg("x@../y"), nil, false},
		{reg("my app"), nil, false},
		{reg("app@ v1"), nil, false},
		{reg("app\t@v1"), nil, false},
		{reg(`a\b`), nil, false},
		{reg("app@"), nil, false},
		{reg("@v1"), nil, false},
		{reg("old one@v1", "app@latest"), stored, true},  // stored keys stay writable
		{reg("old one@v1", "new one@v1"), stored, false}, // but no new bad key joins them
		{reg("old one@v1"), []byte("not json"), false},   // an unreadable stored document exempts nothing
	} {
		err := checkNewKeys(c.doc, c.cur)
		if (err == nil) != c.ok {
			t.Errorf("%v (stored %q): %v, want ok=%v", c.doc.Entries, c.cur, err, c.ok)
		}
		if err != nil && (status(err) != 400 || !errors.Is(err, remote.ErrInvalidRef)) {
			t.Errorf("%v: %v is not a 400 invalid reference", c.doc.Entries, err)
		}
	}
}

// A server that died mid-upload left temp files; New removes those not written for
// staleTemp and keeps fresh ones (an upload in flight in another process).
func TestNewSweepsStaleTemps(t *testing.T) {
	dir := t.TempDir()
	if _, err := New(Options{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * staleTemp)
	files := map[string]bool{ // path -> kept
		filepath.Join(dir, ".tmp-registry.js-1"):            false,
		filepath.Join(dir, "blobs", "Object", ".tmp-abc-2"): false,
		filepath.Join(dir, "blobs", "Layer", ".tmp-abc-3"):  true, // fresh
		filepath.Join(dir, "blobs", "Object", "notatemp"):   true,
	}
	for p, kept := range files {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if !kept || strings.HasSuffix(p, "notatemp") {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := New(Options{DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	for p, kept := range files {
		_, err := os.Stat(p)
		if (err == nil) != kept {
			t.Errorf("%s: kept=%v, want %v", p, err == nil, kept)
		}
	}
}
