package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

// imageWorld is a world with an LXC-layout image server on loopback serving a busybox
// tarball as debian/bookworm, throttled to rate bytes a second when rate > 0.
func imageWorld(t *testing.T, backend string, rate func(size int) int) (*world, *testrootfs.LXCServerT, int64) {
	t.Helper()
	rootfs := testrootfs.Busybox(t)
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	fi, err := os.Stat(tarball)
	if err != nil {
		t.Fatal(err)
	}
	img := testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: tarball}
	if rate != nil {
		img.Rate = rate(int(fi.Size()))
	}
	srv := testrootfs.LXCServer(t, img)
	w := newWorld(t)
	w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \"debian/bookworm\"\n\n[runtime]\nbackend = \""+backend+"\"\n")
	return w, srv, fi.Size()
}

func tarballHits(srv *testrootfs.LXCServerT) int {
	return srv.Requests("/debian/bookworm/" + testrootfs.HostLXCArch() + "/default/20250520_05:24/rootfs.tar.xz")
}

// karapace images lists the cache, refresh downloads an image (again only when the
// server has a newer build), and remove deletes it; an image an environment is built on
// is changed only with --force.
func TestCLIImages(t *testing.T) {
	w, srv, size := imageWorld(t, "mock", nil)
	if r := w.ok("images"); r.stdout != "no cached images (a build downloads its base image)\n" {
		t.Errorf("empty cache: %s", r)
	}
	var entries []imageEntry
	w.jsonOK(&entries, "images", "list")
	if len(entries) != 0 {
		t.Errorf("empty cache --json: %v", entries)
	}

	r := w.ok("images", "refresh", "debian/bookworm")
	if !strings.HasPrefix(r.stdout, "debian-bookworm: downloaded "+srv.URL+"/debian/bookworm/") || tarballHits(srv) != 1 {
		t.Errorf("first refresh (%d downloads): %s", tarballHits(srv), r)
	}
	// Not a terminal: a few plain lines, no bar, no URL repeated.
	if !strings.Contains(r.stderr, "  downloaded ") || strings.Count(r.stderr, srv.URL) > 1 || strings.Contains(r.stderr, "\r") {
		t.Errorf("refresh progress on a pipe: %q", r.stderr)
	}

	w.jsonOK(&entries, "images")
	if len(entries) != 1 || entries[0].Key != "debian-bookworm" || entries[0].Name != "debian/bookworm" ||
		entries[0].Size != size || len(entries[0].Digest) != 64 || entries[0].UsedBy == nil || len(entries[0].UsedBy) != 0 {
		t.Fatalf("images --json: %+v", entries)
	}
	if r := w.ok("images"); !regexp.MustCompile(`(?m)^KEY +IMAGE +SIZE +FETCHED +USED BY\ndebian-bookworm +debian/bookworm +\S+ [KM]iB +\d{4}-\d\d-\d\d \d\d:\d\d +-$`).MatchString(r.stdout) {
		t.Errorf("images table:\n%s", r.stdout)
	}

	// The server's newest build is the cached one: nothing is downloaded.
	var refreshed []imageRefreshed
	res := w.jsonOK(&refreshed, "images", "refresh")
	if len(refreshed) != 1 || refreshed[0].Status != "up_to_date" || refreshed[0].Key != "debian-bookworm" || tarballHits(srv) != 1 {
		t.Errorf("refresh of an up-to-date cache: %+v, %d downloads", refreshed, tarballHits(srv))
	}
	if res.stderr != "" {
		t.Errorf("refresh --json wrote on stderr: %q", res.stderr)
	}

	// An environment built on the image keeps it from being changed without --force.
	w.buildNamed("karapace.toml", "bb")
	w.jsonOK(&entries, "images")
	if len(entries) != 1 || strings.Join(entries[0].UsedBy, ",") != "bb" {
		t.Errorf("used_by after a build: %+v", entries)
	}
	w.fail(1, []string{"image debian-bookworm is the base of 1 environment (bb)", "pass --force", "karapace rebuild"}, "images", "rm", "debian/bookworm")
	w.fail(1, []string{"is the base of 1 environment (bb)"}, "images", "refresh", "debian-bookworm")
	w.fail(1, []string{"image debian/trixie is not cached"}, "images", "remove", "debian/trixie")
	w.fail(1, []string{"unknown image", "or name a cache key"}, "images", "remove", "nosuchimage")

	var removed imagesRemoved
	w.jsonOK(&removed, "images", "remove", "--force", "debian-bookworm")
	if strings.Join(removed.Removed, ",") != "debian-bookworm" {
		t.Errorf("remove --json: %+v", removed)
	}
	w.jsonOK(&entries, "images")
	if len(entries) != 0 {
		t.Errorf("after remove: %+v", entries)
	}
	if r := w.ok("images", "refresh"); r.stdout != "no cached images to refresh\n" {
		t.Errorf("refresh of an empty cache: %s", r)
	}
}

// A base image download on a terminal draws a bar with bytes, rate and ETA (here from a
// server on loopback slowed to a quarter of the image a second); on a pipe the same
// build prints a few plain lines, and under --json nothing reaches stdout but the result.
func TestCLIImageDownloadProgress(t *testing.T) {
	w, _, _ := imageWorld(t, "namespace", func(size int) int { return max(size/4, 64<<10) })
	x := startTmux(t, w, "build", "--name", "bb")
	pane := x.waitFor("a download bar", func(pane string) bool {
		return regexp.MustCompile(`downloading +\d+% \|.*\| \([^)]*iB/[^)]*iB, [^)]*iB/s\) \[\d+s:\d+s\]`).MatchString(pane)
	})
	if strings.Count(pane, "rootfs.tar.xz") > 1 {
		t.Errorf("the URL is repeated:\n%s", pane)
	}
	if got := x.exitStatus(); got != 0 {
		t.Fatalf("build exited %d:\n%s", got, x.tmux("capture-pane", "-p", "-t", "ui"))
	}
	pane = x.tmux("capture-pane", "-p", "-t", "ui")
	if !regexp.MustCompile(`downloaded \S+ [KM]iB in \S+, \S+ [KM]iB/s`).MatchString(pane) || !strings.Contains(pane, "✓") {
		t.Errorf("after the download:\n%s", pane)
	}

	w.ok("images", "rm", "--force", "debian/bookworm")
	r := w.ok("build")
	lines := strings.Count(r.stderr, "downloaded ")
	if lines < 2 || lines > 5 || strings.Count(r.stderr, "rootfs.tar.xz") != 1 || strings.Contains(r.stderr, "\r") {
		t.Errorf("build progress on a pipe: %q", r.stderr)
	}

	w.ok("images", "rm", "--force", "debian/bookworm")
	var out map[string]any
	if r := w.jsonOK(&out, "build"); strings.Contains(r.stdout, "download") {
		t.Errorf("--json stdout: %s", r.stdout)
	}
}

// Every `new` template names an image alias karapace knows and mounts only the project
// directory, which exists wherever the manifest is; the dev template's image and mount
// (without its packages, which the busybox fixture cannot install) build and run.
func TestCLINewTemplatesBuild(t *testing.T) {
	w, _, _ := imageWorld(t, "namespace", nil)
	for _, name := range schema.TemplateNames() {
		w.ok("new", "demo", "--template", name, "--force")
		m, err := schema.LoadManifest(filepath.Join(w.dir, "karapace.toml"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n, err := m.Normalize()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if ref, err := image.Resolve(n.BaseImage); err != nil || ref.Kind != image.KindAlias {
			t.Errorf("%s: image %q is not a known alias: %v", name, n.BaseImage, err)
		}
		for _, mt := range n.Mounts {
			if filepath.IsAbs(mt.HostPath) || strings.HasPrefix(mt.HostPath, "~") {
				t.Errorf("%s: mount %s needs %s to exist", name, mt.Label, mt.HostPath)
			} else if _, err := os.Stat(filepath.Join(w.dir, mt.HostPath)); err != nil {
				t.Errorf("%s: mount %s: %v", name, mt.Label, err)
			}
		}
	}
	w.ok("new", "demo", "--template", "dev", "--force")
	b, err := os.ReadFile(filepath.Join(w.dir, "karapace.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`(?m)^packages = .*$`).ReplaceAllString(string(b), "packages = []")
	w.write("karapace.toml", text)
	w.buildNamed("karapace.toml", "dev")
	if r := w.ok("exec", "dev", "--", "/bin/ls", "/workspace"); !strings.Contains(r.stdout, "karapace.toml") {
		t.Errorf("the project at /workspace: %s", r)
	}

	// A mount whose directory is missing says so, and how to fix it.
	w.write("karapace.toml", strings.Replace(text, `workspace = ".:/workspace"`, `workspace = "./gone:/workspace"`, 1))
	w.buildNamed("karapace.toml", "gone")
	gone := filepath.Join(w.dir, "gone")
	r := w.fail(1, []string{"mount 'workspace': " + gone + " does not exist on the host", "mkdir -p '" + gone + "'"}, "exec", "gone", "--", "/bin/true")
	if strings.Contains(r.stderr, "not allowed by policy") {
		t.Errorf("a missing directory is not a policy refusal: %s", r.stderr)
	}

	// A frozen environment says how to unfreeze it, and unfreeze does.
	w.ok("freeze", "dev")
	w.fail(1, []string{"frozen -> running", "'karapace unfreeze <env>'"}, "exec", "dev", "--", "/bin/true")
	w.fail(1, []string{"unfreeze requires a frozen environment"}, "unfreeze", "gone")
	if r := w.ok("unfreeze", "dev"); r.stdout != "unfrozen environment dev\n" {
		t.Errorf("unfreeze: %s", r)
	}
	w.ok("exec", "dev", "--", "/bin/true")
}
