package testrootfs

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, url string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestLXCServerLayout(t *testing.T) {
	tarball := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	data := bytes.Repeat([]byte("0123456789"), 1000)
	os.WriteFile(tarball, data, 0o644)
	srv := LXCServer(t, LXCImage{Distro: "fedora", Release: "41", Arch: "amd64", Builds: []string{"20250102_03:04", "20241231_23:59"}, Tarball: tarball})

	resp, page := get(t, srv.URL+"/fedora/41/amd64/default/")
	if resp.StatusCode != 200 {
		t.Fatalf("index: %s", resp.Status)
	}
	// nginx autoindex style, sorted, ':' escaped in hrefs.
	i := strings.Index(string(page), `<a href="20241231_23%3A59/">20241231_23:59/</a>`)
	j := strings.Index(string(page), `<a href="20250102_03%3A04/">20250102_03:04/</a>`)
	if i < 0 || j < 0 || i > j || !strings.Contains(string(page), `<a href="../">../</a>`) {
		t.Errorf("index page:\n%s", page)
	}
	resp, body := get(t, srv.URL+"/fedora/41/amd64/default/20250102_03%3A04/rootfs.tar.xz")
	if resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Errorf("tarball: %s, %d bytes", resp.Status, len(body))
	}
	resp, body = get(t, srv.URL+"/fedora/41/amd64/default/20250102_03:04/rootfs.tar.xz", "Range", "bytes=9990-")
	if resp.StatusCode != http.StatusPartialContent || string(body) != "0123456789" {
		t.Errorf("range: %s %q", resp.Status, body)
	}
	if resp, _ := get(t, srv.URL+"/fedora/42/amd64/default/"); resp.StatusCode != 404 {
		t.Errorf("unknown release: %s", resp.Status)
	}
	if n := srv.Requests("/fedora/41/amd64/default/20250102_03:04/rootfs.tar.xz"); n != 2 {
		t.Errorf("Requests = %d, want 2", n)
	}
	if srv.Requests("") != 4 {
		t.Errorf("total requests %d", srv.Requests(""))
	}
}
