package image

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

const tarballPath = "/debian/bookworm/%s/default/20250520_05:24/rootfs.tar.xz"

// sampleServer serves a small synthetic image as debian/bookworm.
func sampleServer(t *testing.T) (*testrootfs.LXCServerT, []byte) {
	t.Helper()
	data := compressAs(t, makeTar(t, sampleTree()...), CompressionZstd)
	p := filepath.Join(t.TempDir(), "rootfs.tar.zst")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := testrootfs.LXCServer(t, testrootfs.LXCImage{Distro: "debian", Release: "bookworm", Tarball: p})
	return srv, data
}

func tarballRequests(srv *testrootfs.LXCServerT) int {
	return srv.Requests(strings.Replace(tarballPath, "%s", testrootfs.HostLXCArch(), 1))
}

func mustResolve(t *testing.T, name string) Ref {
	t.Helper()
	ref, err := Resolve(name)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func assertNoLeftovers(t *testing.T, c *Cache) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-*"))
	downloads, _ := filepath.Glob(filepath.Join(c.dir, "*", "rootfs.download"))
	if len(left)+len(downloads) > 0 {
		t.Errorf("leftovers: %v %v", left, downloads)
	}
}

func TestEnsureFromImageServer(t *testing.T) {
	srv, data := sampleServer(t)
	t.Setenv(ServerEnv, srv.URL)
	store := t.TempDir()
	c := NewCache(store)
	if c.Server() != srv.URL {
		t.Fatalf("Server() = %s, want %s from %s", c.Server(), srv.URL, ServerEnv)
	}
	var phases []Phase
	img, err := c.Ensure(context.Background(), mustResolve(t, "debian/bookworm"), EnsureOptions{Progress: func(e Event) {
		if len(phases) == 0 || phases[len(phases)-1] != e.Phase {
			phases = append(phases, e.Phase)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != schema.Sum(data) || img.Cached {
		t.Errorf("digest %s cached %v, want blake3 of the tarball %s", img.Digest, img.Cached, schema.Sum(data))
	}
	if img.Key != "debian-bookworm" || img.Rootfs != filepath.Join(store, "images", "debian-bookworm", "rootfs") {
		t.Errorf("Rootfs = %s", img.Rootfs)
	}
	checkSampleTree(t, img.Rootfs)
	if b, _ := os.ReadFile(filepath.Join(img.Dir, DigestFile)); string(b) != img.Digest.String() {
		t.Errorf("%s = %q", DigestFile, b)
	}
	wantSrc := srv.URL + "/debian/bookworm/" + HostArch() + "/default/20250520_05%3A24/rootfs.tar.xz"
	rec, err := c.Record("debian-bookworm")
	if err != nil || rec.Source != wantSrc || rec.Size != int64(len(data)) || rec.Compression != CompressionZstd || rec.Arch != HostArch() || rec.TreeDigest.IsZero() || rec.FetchedAt.IsZero() {
		t.Errorf("record %+v (%v); want source %s", rec, err, wantSrc)
	}
	want := []Phase{PhaseResolve, PhaseDownload, PhaseExtract, PhaseDigest, PhaseReady}
	if strings.Join(phaseStrings(phases), ",") != strings.Join(phaseStrings(want), ",") {
		t.Errorf("phases %v, want %v", phases, want)
	}
	assertNoLeftovers(t, c)

	// Second use: from the cache, no network.
	before := srv.Requests("")
	again, err := c.Ensure(context.Background(), mustResolve(t, "debian"), EnsureOptions{Verify: true})
	if err != nil || !again.Cached || again.Digest != img.Digest || srv.Requests("") != before {
		t.Errorf("cached Ensure: %v cached=%v, %d new requests", err, again.Cached, srv.Requests("")-before)
	}
	if keys, _ := c.Keys(); len(keys) != 1 || keys[0] != "debian-bookworm" {
		t.Errorf("Keys() = %v", keys)
	}
}

func phaseStrings(ps []Phase) []string {
	var s []string
	for _, p := range ps {
		s = append(s, string(p))
	}
	return s
}

func TestEnsureOffline(t *testing.T) {
	srv, _ := sampleServer(t)
	c := testCache(t, WithServer(srv.URL))
	ref := mustResolve(t, "debian/bookworm")
	_, err := c.Ensure(context.Background(), ref, EnsureOptions{Offline: true})
	if !errors.Is(err, ErrOffline) || !strings.Contains(err.Error(), "Debian Bookworm") || !strings.Contains(err.Error(), "not cached") {
		t.Errorf("offline, not cached: %v", err)
	}
	if n := srv.Requests(""); n != 0 {
		t.Errorf("offline mode made %d requests", n)
	}
	if _, err := c.Ensure(context.Background(), ref, EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	n := srv.Requests("")
	img, err := c.Ensure(context.Background(), ref, EnsureOptions{Offline: true})
	if err != nil || !img.Cached || srv.Requests("") != n {
		t.Errorf("offline, cached: %v", err)
	}
}

func TestDigestStableAcrossStores(t *testing.T) {
	srv, _ := sampleServer(t)
	var recs []Record
	for i := 0; i < 2; i++ {
		c := testCache(t, WithServer(srv.URL))
		if _, err := c.Ensure(context.Background(), mustResolve(t, "debian"), EnsureOptions{}); err != nil {
			t.Fatal(err)
		}
		rec, _ := c.Record("debian-bookworm")
		recs = append(recs, rec)
	}
	if recs[0].Digest != recs[1].Digest || recs[0].TreeDigest != recs[1].TreeDigest {
		t.Errorf("two stores disagree: %+v vs %+v", recs[0], recs[1])
	}
}

func TestVerifyDetectsModification(t *testing.T) {
	srv, _ := sampleServer(t)
	c := testCache(t, WithServer(srv.URL))
	img, err := c.Ensure(context.Background(), mustResolve(t, "debian"), EnsureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Verify(ctx, "debian-bookworm"); err != nil {
		t.Fatalf("fresh image: %v", err)
	}
	if err := os.WriteFile(filepath.Join(img.Rootfs, "etc/os-release"), []byte("ID=tampered\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, "debian-bookworm"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("modified file: %v, want ErrCorrupt", err)
	}
	if _, err := c.Ensure(ctx, mustResolve(t, "debian"), EnsureOptions{Verify: true}); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Ensure with Verify: %v, want ErrCorrupt", err)
	}
	os.WriteFile(filepath.Join(img.Rootfs, "etc/os-release"), []byte("ID=test\n"), 0o644)
	if err := c.Verify(ctx, "debian-bookworm"); err != nil {
		t.Errorf("restored file: %v", err)
	}
	os.WriteFile(filepath.Join(img.Dir, DigestFile), []byte(strings.Repeat("0", 64)), 0o644)
	if err := c.Verify(ctx, "debian-bookworm"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("edited %s: %v, want ErrCorrupt", DigestFile, err)
	}
	for _, bad := range []string{"../x", "nope"} {
		if err := c.Verify(ctx, bad); !errors.Is(err, ErrImageNotFound) {
			t.Errorf("Verify(%q) = %v, want ErrImageNotFound", bad, err)
		}
	}
}

func TestEnsureLocalImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "my rootfs.tar.gz")
	one := compressAs(t, makeTar(t, sampleTree()...), CompressionGzip)
	os.WriteFile(p, one, 0o644)
	c := testCache(t)
	for _, name := range []string{p, "file://" + p} {
		img, err := c.Ensure(context.Background(), mustResolve(t, name), EnsureOptions{Offline: true})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if img.Digest != schema.Sum(one) || img.Record.Source != p {
			t.Errorf("%s: digest %s source %s", name, img.Digest, img.Record.Source)
		}
		checkSampleTree(t, img.Rootfs)
	}
	// The same path with new bytes is a new image.
	two := compressAs(t, makeTar(t, file("./etc/os-release", "ID=two\n")), CompressionXz)
	os.WriteFile(p, two, 0o644)
	img, err := c.Ensure(context.Background(), mustResolve(t, p), EnsureOptions{})
	if err != nil || img.Cached || img.Digest != schema.Sum(two) {
		t.Fatalf("changed tarball: %v cached=%v", err, img.Cached)
	}
	if b, _ := os.ReadFile(filepath.Join(img.Rootfs, "etc/os-release")); string(b) != "ID=two\n" {
		t.Errorf("re-extracted tree has %q", b)
	}
	if _, err := os.Stat(filepath.Join(img.Rootfs, "usr")); err == nil {
		t.Error("files of the previous extraction survived")
	}
	assertNoLeftovers(t, c)
	if _, err := c.Ensure(context.Background(), mustResolve(t, p+".missing"), EnsureOptions{}); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("missing local tarball: %v", err)
	}
}

func TestEnsureCustomURL(t *testing.T) {
	srv, data := sampleServer(t)
	u := srv.URL + "/debian/bookworm/" + testrootfs.HostLXCArch() + "/default/20250520_05%3A24/rootfs.tar.xz"
	c := testCache(t)
	img, err := c.Ensure(context.Background(), mustResolve(t, u), EnsureOptions{})
	if err != nil || img.Digest != schema.Sum(data) || !strings.HasPrefix(img.Ref.Key, "custom-") {
		t.Fatalf("custom URL: %v %+v", err, img.Ref)
	}
	missing := strings.Replace(u, "20250520", "20990101", 1)
	if _, err := c.Ensure(context.Background(), mustResolve(t, missing), EnsureOptions{}); !errors.Is(err, ErrImageNotFound) || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
	assertNoLeftovers(t, c)
	if _, err := os.Stat(c.Dir(mustResolve(t, missing).Key)); err == nil {
		t.Error("a failed download left a cache directory")
	}
}

func TestEnsureRejectsHostileArchive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "evil.tar")
	os.WriteFile(p, makeTar(t, symlink("./x", "/"), file("./x/tmp/karapace-escape-test", "boom")), 0o644)
	c := testCache(t)
	ref := mustResolve(t, p)
	if _, err := c.Ensure(context.Background(), ref, EnsureOptions{}); !errors.Is(err, ErrUnsafeArchive) {
		t.Errorf("err = %v, want ErrUnsafeArchive", err)
	}
	if _, err := os.Stat("/tmp/karapace-escape-test"); err == nil {
		os.Remove("/tmp/karapace-escape-test")
		t.Error("escaped")
	}
	if _, err := os.Stat(c.Dir(ref.Key)); err == nil {
		t.Error("a rejected archive left a cache directory")
	}
	assertNoLeftovers(t, c)
}

func TestEnsureConcurrentDownloadsOnce(t *testing.T) {
	srv, _ := sampleServer(t)
	c := testCache(t, WithServer(srv.URL))
	var wg sync.WaitGroup
	digests := make([]schema.Digest, 4)
	for i := range digests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img, err := c.Ensure(context.Background(), mustResolve(t, "debian"), EnsureOptions{})
			if err != nil {
				t.Error(err)
			}
			digests[i] = img.Digest
		}()
	}
	wg.Wait()
	if n := tarballRequests(srv); n != 1 {
		t.Errorf("tarball fetched %d times, want 1", n)
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Errorf("digests differ: %v", digests)
		}
	}
}

func TestPin(t *testing.T) {
	srv, _ := sampleServer(t)
	c := testCache(t, WithServer(srv.URL))
	got, err := c.Pin(context.Background(), "Debian/Bookworm")
	want := srv.URL + "/debian/bookworm/" + HostArch() + "/default/20250520_05%3A24/rootfs.tar.xz"
	if err != nil || got != want {
		t.Errorf("Pin = %q, %v; want %q", got, err, want)
	}
	// The pinned URL is itself an image name that fetches the same bytes.
	img, err := c.Ensure(context.Background(), mustResolve(t, got), EnsureOptions{})
	if err != nil || img.Ref.Kind != KindURL {
		t.Errorf("Ensure(pinned) = %v", err)
	}
	if u, _ := c.Pin(context.Background(), "https://Example.com/A.tar"); u != "https://Example.com/A.tar" {
		t.Errorf("Pin(URL) = %q", u)
	}
	if _, err := c.Pin(context.Background(), "fedora"); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("Pin of an image the server lacks: %v, want ErrImageNotFound", err)
	}
	if _, err := c.Pin(context.Background(), "gentoo"); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("Pin(gentoo): %v", err)
	}
}

func TestRemove(t *testing.T) {
	srv, _ := sampleServer(t)
	c := testCache(t, WithServer(srv.URL))
	ctx := context.Background()
	if err := c.Remove(ctx, "debian-bookworm"); err != nil {
		t.Errorf("removing an uncached image: %v", err)
	}
	if _, err := c.Ensure(ctx, mustResolve(t, "debian"), EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "debian-bookworm"); err != nil {
		t.Fatal(err)
	}
	if keys, _ := c.Keys(); len(keys) != 0 {
		t.Errorf("Keys after Remove = %v", keys)
	}
	assertNoLeftovers(t, c)
	if _, err := c.Ensure(ctx, mustResolve(t, "debian"), EnsureOptions{Offline: true}); !errors.Is(err, ErrOffline) {
		t.Errorf("removed image still used offline: %v", err)
	}
	if err := c.Remove(ctx, "../etc"); !errors.Is(err, ErrImageNotFound) {
		t.Errorf("Remove(../etc) = %v", err)
	}
}

// A cache directory written by the original (rootfs/ and a metadata-listing
// rootfs.blake3, no image.json) is replaced by a fresh download, never trusted.
func TestEnsureReplacesLegacyCacheDir(t *testing.T) {
	srv, data := sampleServer(t)
	c := testCache(t, WithServer(srv.URL))
	legacy := c.Dir("debian-bookworm")
	os.MkdirAll(filepath.Join(legacy, "rootfs", "etc"), 0o755)
	os.WriteFile(filepath.Join(legacy, "rootfs", "etc", "legacy"), []byte("old"), 0o644)
	os.WriteFile(filepath.Join(legacy, DigestFile), []byte(strings.Repeat("ab", 32)), 0o644)
	img, err := c.Ensure(context.Background(), mustResolve(t, "debian"), EnsureOptions{})
	if err != nil || img.Cached || img.Digest != schema.Sum(data) {
		t.Fatalf("Ensure over a legacy directory: %v cached=%v", err, img.Cached)
	}
	if _, err := os.Stat(filepath.Join(img.Rootfs, "etc", "legacy")); err == nil {
		t.Error("legacy files survived")
	}
	checkSampleTree(t, img.Rootfs)
	assertNoLeftovers(t, c)
}

// Refresh of a cached alias asks the server for its newest build: the same build is
// kept without a download; another build (here: another server) replaces the image.
func TestEnsureRefresh(t *testing.T) {
	srv, data := sampleServer(t)
	store := t.TempDir()
	c := NewCache(store, WithServer(srv.URL))
	ref := mustResolve(t, "debian/bookworm")
	if _, err := c.Ensure(context.Background(), ref, EnsureOptions{}); err != nil {
		t.Fatal(err)
	}
	img, err := c.Ensure(context.Background(), ref, EnsureOptions{Refresh: true})
	if err != nil || !img.Cached || tarballRequests(srv) != 1 {
		t.Fatalf("refresh of the newest build: %v cached=%v, %d tarball requests", err, img.Cached, tarballRequests(srv))
	}
	other, _ := sampleServer(t)
	c2 := NewCache(store, WithServer(other.URL))
	var bytes int64
	img, err = c2.Ensure(context.Background(), ref, EnsureOptions{Refresh: true, Progress: func(e Event) {
		if e.Phase == PhaseDownload && e.Message == "" {
			bytes = e.Done
		}
	}})
	if err != nil || img.Cached || tarballRequests(other) != 1 || !strings.HasPrefix(img.Record.Source, other.URL) {
		t.Fatalf("refresh from a new build: %v cached=%v source %s", err, img.Cached, img.Record.Source)
	}
	if img.Digest != schema.Sum(data) || bytes != int64(len(data)) {
		t.Errorf("digest %s, %d bytes reported of %d", img.Digest, bytes, len(data))
	}
	checkSampleTree(t, img.Rootfs)
	assertNoLeftovers(t, c2)
}
