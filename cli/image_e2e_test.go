package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// pin of an alias asks the image server (here an LXC-layout server on loopback) for the
// newest build and writes its URL, keeping the manifest's comments.
func TestCLIPinAlias(t *testing.T) {
	w := newWorld(t)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(tarball, []byte("not read by pin"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball,
		Builds: []string{"20250101_05:24", "20250301_05:24", "20250201_05:24"}})
	w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
	w.write("karapace.toml", "# my project\nmanifest_version = 1\n\n[base]\nimage = \"debian/bookworm\" # stable\n\n[runtime]\nbackend = \"mock\"\n")
	w.fail(1, []string{"base.image is not pinned: 'debian/bookworm'"}, "pin", "--check")
	var res pinResult
	w.jsonOK(&res, "pin")
	want := srv.URL + "/debian/bookworm/" + testrootfs.HostLXCArch() + "/default/20250301_05%3A24/rootfs.tar.xz"
	if res.BaseImage != want {
		t.Errorf("pinned to %q, want %q", res.BaseImage, want)
	}
	b, err := os.ReadFile(filepath.Join(w.dir, "karapace.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "# my project\n") || !strings.Contains(string(b), "image = \""+want+"\" # stable\n") {
		t.Errorf("pinned manifest:\n%s", b)
	}
	w.ok("pin", "--check")
	// An unknown alias is an error naming it; the manifest is untouched.
	w.manifest("other.toml", "nosuchdistro/1")
	w.fail(1, []string{"failed to resolve pinned image URL"}, "pin", "other.toml")
	w.ok("build", "--require-pinned-image")
}
