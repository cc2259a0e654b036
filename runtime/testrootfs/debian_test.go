package testrootfs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDebianFixture(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: -short: the Debian fixture runs debootstrap")
	}
	fx := DebianImage(t, "bookworm")
	v, err := os.ReadFile(filepath.Join(fx.Rootfs, "etc/debian_version"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(v), "12.") {
		t.Errorf("etc/debian_version = %q, want bookworm (12.x)", v)
	}
	for _, p := range []string{"usr/bin/apt-get", "usr/bin/dpkg-query"} {
		if _, err := os.Stat(filepath.Join(fx.Rootfs, p)); err != nil {
			t.Errorf("minbase rootfs lacks %s: %v", p, err)
		}
	}
	fi, err := os.Stat(fx.Tarball)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() < 10<<20 {
		t.Errorf("tarball is only %d bytes", fi.Size())
	}
	// A second call reuses the cache.
	if again := DebianImage(t, "bookworm"); again != fx {
		t.Errorf("second call gave %+v, want %+v", again, fx)
	}
}

func TestDebianMirror(t *testing.T) {
	t.Setenv(MirrorEnv, "http://mirror.example/debian")
	if got := DebianMirror(); got != "http://mirror.example/debian" {
		t.Errorf("DebianMirror() = %q with %s set", got, MirrorEnv)
	}
	t.Setenv(MirrorEnv, "")
	if got := DebianMirror(); !strings.HasPrefix(got, "http") || !strings.HasSuffix(got, "/debian") {
		t.Errorf("DebianMirror() = %q, want an http(s) URL ending in /debian", got)
	}
}
