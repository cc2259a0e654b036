package testrootfs

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// LXCImage is one image the LXCServer serves.
type LXCImage struct {
	Distro, Release string // e.g. "debian", "bookworm"
	// Arch is the LXC architecture name; empty means the host's (amd64, arm64, ...).
	Arch string
	// Builds are the build directories listed in the index; empty means two builds,
	// "20250519_05:24" and "20250520_05:24". Every build serves the same tarball.
	Builds []string
	// Tarball is the file served as each build's rootfs.tar.xz (its bytes, whatever
	// their compression).
	Tarball string
	// Rate, when positive, throttles the tarball to about this many bytes a second
	// (for tests that watch a download's progress).
	Rate int
}

// LXCServerT is an image server on 127.0.0.1 laid out like images.linuxcontainers.org:
//
//	{URL}/{distro}/{release}/{arch}/default/                      index (nginx autoindex HTML)
//	{URL}/{distro}/{release}/{arch}/default/{build}/rootfs.tar.xz  the tarball
//
// Set KARAPACE_IMAGE_SERVER to URL and the real download path runs against it.
// Tarballs are served with http.ServeContent, so Range and If-Range work.
type LXCServerT struct {
	URL string

	mu       sync.Mutex
	requests map[string]int
}

// LXCServer starts the server; it stops when the test ends.
func LXCServer(t testing.TB, images ...LXCImage) *LXCServerT {
	t.Helper()
	s := &LXCServerT{requests: map[string]int{}}
	mux := http.NewServeMux()
	modTime := time.Date(2025, 5, 20, 7, 12, 0, 0, time.UTC)
	for _, img := range images {
		if img.Arch == "" {
			img.Arch = HostLXCArch()
		}
		builds := img.Builds
		if len(builds) == 0 {
			builds = []string{"20250519_05:24", "20250520_05:24"}
		}
		data, err := os.ReadFile(img.Tarball)
		if err != nil {
			t.Fatalf("testrootfs.LXCServer: %v", err)
		}
		dir := "/" + img.Distro + "/" + img.Release + "/" + img.Arch + "/default/"
		page := indexPage(dir, builds, modTime)
		mux.HandleFunc("GET "+dir+"{$}", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.Write(page)
		})
		for _, b := range builds {
			// The mux matches the unescaped path, so the pattern holds the raw ':'.
			mux.HandleFunc("GET "+dir+b+"/rootfs.tar.xz", func(w http.ResponseWriter, r *http.Request) {
				if img.Rate > 0 {
					w = &throttled{ResponseWriter: w, rate: img.Rate}
				}
				http.ServeContent(w, r, "rootfs.tar.xz", modTime, strings.NewReader(string(data)))
			})
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.requests[r.URL.Path]++
		s.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.URL = srv.URL
	return s
}

// Requests returns how many requests reached path (unescaped), or all paths when path
// is empty.
func (s *LXCServerT) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if path != "" {
		return s.requests[path]
	}
	n := 0
	for _, c := range s.requests {
		n += c
	}
	return n
}

// throttled writes a response body in tenths of rate bytes, a tenth of a second apart.
type throttled struct {
	http.ResponseWriter
	rate int
}

func (t *throttled) Write(b []byte) (int, error) {
	step := max(t.rate/10, 1)
	n := 0
	for len(b) > 0 {
		k := min(step, len(b))
		m, err := t.ResponseWriter.Write(b[:k])
		n += m
		if err != nil {
			return n, err
		}
		if f, ok := t.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		b = b[k:]
		time.Sleep(100 * time.Millisecond)
	}
	return n, nil
}

// indexPage renders a directory listing the way the real server (nginx autoindex) does.
func indexPage(dir string, builds []string, mod time.Time) []byte {
	sorted := append([]string(nil), builds...)
	sort.Strings(sorted)
	var b strings.Builder
	fmt.Fprintf(&b, "<html>\r\n<head><title>Index of /images%s</title></head>\r\n<body>\r\n", html.EscapeString(dir))
	fmt.Fprintf(&b, "<h1>Index of /images%s</h1><hr><pre><a href=\"../\">../</a>\r\n", html.EscapeString(dir))
	for _, name := range sorted {
		href := strings.ReplaceAll(url.PathEscape(name), ":", "%3A") + "/"
		label := name + "/"
		fmt.Fprintf(&b, "<a href=\"%s\">%s</a>%s%s                   -\r\n",
			href, html.EscapeString(label), strings.Repeat(" ", max(1, 51-len(label))), mod.Format("02-Jan-2006 15:04"))
	}
	b.WriteString("</pre><hr></body>\r\n</html>\r\n")
	return []byte(b.String())
}

// HostLXCArch is the LXC image server's name for the test binary's architecture.
func HostLXCArch() string {
	switch runtime.GOARCH {
	case "386":
		return "i386"
	case "arm":
		return "armhf"
	case "ppc64le":
		return "ppc64el"
	case "loong64":
		return "loongarch64"
	}
	return runtime.GOARCH
}

// DebianServer serves the Debian fixture of suite (see DebianImage) as debian/<suite>
// for the host architecture. Point KARAPACE_IMAGE_SERVER at its URL and the image
// "debian/<suite>" resolves, downloads and extracts through the real code path.
func DebianServer(t testing.TB, suite string) *LXCServerT {
	t.Helper()
	return LXCServer(t, LXCImage{Distro: "debian", Release: suite, Tarball: DebianTarball(t, suite)})
}
