package image

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseRecordedIndex(t *testing.T) {
	page, err := os.ReadFile("testdata/index-debian-bookworm-amd64.html")
	if err != nil {
		t.Fatal(err)
	}
	builds := ParseIndex(page)
	want := []string{"20250518_05:24", "20250519_05:24", "20250520_05:24"}
	if !reflect.DeepEqual(builds, want) {
		t.Fatalf("ParseIndex = %q, want %q", builds, want)
	}
	ref, _ := Resolve("debian/bookworm")
	index := IndexURL(DefaultServer, ref, "amd64")
	if index != "https://images.linuxcontainers.org/images/debian/bookworm/amd64/default/" {
		t.Errorf("IndexURL = %s", index)
	}
	got := BuildURL(index, builds[len(builds)-1])
	if got != "https://images.linuxcontainers.org/images/debian/bookworm/amd64/default/20250520_05%3A24/rootfs.tar.xz" {
		t.Errorf("BuildURL = %s", got)
	}
}

func TestParseIndexIgnoresNoise(t *testing.T) {
	page := []byte(`<a href="../">../</a> <a href="2024/">short</a> <a href="x20250101/">x</a>
<a href="20250101_01%3A00/">a</a><a href="20250101_01:00/">dup</a> <a href="/abs/20250102_00:00/">abs</a>
<a href="20241231_23%3A59">no slash</a>`)
	got := ParseIndex(page)
	want := []string{"20241231_23:59", "20250101_01:00"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParseIndex = %q, want %q", got, want)
	}
	if ParseIndex(nil) != nil {
		t.Error("empty page gave builds")
	}
}

func TestArchFor(t *testing.T) {
	for goarch, want := range map[string]string{"amd64": "amd64", "arm64": "arm64", "386": "i386", "arm": "armhf", "ppc64le": "ppc64el", "riscv64": "riscv64", "s390x": "s390x", "mips": "mips"} {
		if got := ArchFor(goarch); got != want {
			t.Errorf("ArchFor(%s) = %s, want %s", goarch, got, want)
		}
	}
	if HostArch() == "" {
		t.Error("HostArch empty")
	}
}

func TestIndexFetchRetriesTransientErrors(t *testing.T) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) < 3 {
			http.Error(w, "busy", http.StatusBadGateway)
			return
		}
		w.Write([]byte(`<a href="20250101_00%3A00/">x</a>`))
	}))
	defer srv.Close()
	c := testCache(t, WithServer(srv.URL))
	u, err := c.Pin(context.Background(), "debian")
	if err != nil || !strings.HasSuffix(u, "/debian/bookworm/"+HostArch()+"/default/20250101_00%3A00/rootfs.tar.xz") || n.Load() != 3 {
		t.Errorf("Pin = %q, %v after %d requests", u, err, n.Load())
	}
}
