package testrootfs

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// CacheEnv names the directory that keeps fixtures between test runs.
const CacheEnv = "KARAPACE_TEST_CACHE"

// DefaultCacheDir is used when CacheEnv is unset.
const DefaultCacheDir = "/var/tmp/karapace-test-cache"

// MirrorEnv overrides the Debian mirror debootstrap uses.
const MirrorEnv = "KARAPACE_DEBIAN_MIRROR"

// CacheDir returns $KARAPACE_TEST_CACHE or DefaultCacheDir.
func CacheDir() string {
	if d := os.Getenv(CacheEnv); d != "" {
		return d
	}
	return DefaultCacheDir
}

// DebianFixture is a cached Debian root file system and a tarball of it.
type DebianFixture struct {
	Suite string
	// Rootfs is the debootstrapped tree. It is shared by every test and every test
	// binary: never modify it (extract Tarball, or use an overlay, to get a copy).
	Rootfs string
	// Tarball is a zstd-compressed tar of Rootfs, made once with GNU tar (numeric
	// owners, device nodes included, as image servers ship them). zstd because Go
	// decompresses it in 0.5 s against 8.7 s for xz (and a minute for xz under -race).
	Tarball string
}

// Debian returns the rootfs of a `debootstrap --variant=minbase <suite>` from the Debian
// mirror this machine uses. It is built once and cached (see DebianTarball).
func Debian(t testing.TB, suite string) string {
	t.Helper()
	return DebianImage(t, suite).Rootfs
}

// DebianTarball returns the path of a tarball of Debian(t, suite).
func DebianTarball(t testing.TB, suite string) string {
	t.Helper()
	return DebianImage(t, suite).Tarball
}

var suiteRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)

// DebianImage builds (once, under an flock so parallel test binaries wait for each
// other) or reuses the cached Debian fixture of suite under CacheDir()/debian-<suite>/.
// Without root or debootstrap it fails under CI=true and skips loudly otherwise.
func DebianImage(t testing.TB, suite string) DebianFixture {
	t.Helper()
	if !suiteRE.MatchString(suite) {
		t.Fatalf("testrootfs.Debian: bad suite name %q", suite)
	}
	cache := CacheDir()
	final := filepath.Join(cache, "debian-"+suite)
	fx := DebianFixture{Suite: suite, Rootfs: filepath.Join(final, "rootfs"), Tarball: filepath.Join(final, "rootfs.tar.zst")}
	if complete(final) {
		return fx
	}
	if os.Geteuid() != 0 {
		missing(t, "debootstrap needs root (uid 0) to build the Debian fixture; run the tests as root or pre-build "+final)
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		missing(t, "debootstrap is not installed (apt-get install debootstrap); it builds the Debian fixture")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	unlock := lockFile(t, filepath.Join(cache, "debian-"+suite+".lock"))
	defer unlock()
	if complete(final) { // built by another test binary while we waited
		return fx
	}
	if err := buildDebian(t, cache, final, suite); err != nil {
		t.Fatalf("testrootfs: building the Debian %s fixture: %v", suite, err)
	}
	return fx
}

func complete(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "complete"))
	return err == nil
}

func buildDebian(t testing.TB, cache, final, suite string) error {
	// Leftovers of a build that died: only the lock holder builds, so they are dead.
	if old, _ := filepath.Glob(filepath.Join(cache, ".tmp-debian-"+suite+"-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	os.RemoveAll(final)
	tmp, err := os.MkdirTemp(cache, ".tmp-debian-"+suite+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	rootfs := filepath.Join(tmp, "rootfs")
	mirror := DebianMirror()
	t.Logf("testrootfs: debootstrap --variant=minbase %s from %s (once; cached in %s)", suite, mirror, final)
	start := time.Now()
	out, err := exec.Command("debootstrap", "--variant=minbase", suite, rootfs, mirror).CombinedOutput()
	if err != nil {
		return fmt.Errorf("debootstrap: %v\n%s", err, tail(out, 4000))
	}
	t.Logf("testrootfs: debootstrap took %v", time.Since(start).Round(time.Millisecond))
	// debootstrap's own log and cached .debs are not part of an image.
	os.RemoveAll(filepath.Join(rootfs, "debootstrap"))
	if debs, _ := filepath.Glob(filepath.Join(rootfs, "var/cache/apt/archives/*.deb")); len(debs) > 0 {
		for _, d := range debs {
			os.Remove(d)
		}
	}
	start = time.Now()
	if err := writeTarball(rootfs, filepath.Join(tmp, "rootfs.tar.zst")); err != nil {
		return err
	}
	t.Logf("testrootfs: tarball took %v", time.Since(start).Round(time.Millisecond))
	if err := os.WriteFile(filepath.Join(tmp, "complete"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// writeTarball packs dir with GNU tar (as image builders do: "./" prefixes, numeric
// owners) and compresses it with zstd in-process.
func writeTarball(dir, dst string) (err error) {
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	enc, err := zstd.NewWriter(out, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	cmd := exec.Command("tar", "--numeric-owner", "--sort=name", "-C", dir, "-cf", "-", ".")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	_, copyErr := io.Copy(enc, bufio.NewReaderSize(pipe, 1<<20))
	waitErr := cmd.Wait()
	if copyErr != nil {
		return copyErr
	}
	if waitErr != nil {
		return fmt.Errorf("tar: %v: %s", waitErr, stderr.String())
	}
	if err := enc.Close(); err != nil {
		return err
	}
	return out.Sync()
}

// DebianMirror returns $KARAPACE_DEBIAN_MIRROR, else the first Debian archive URI in
// /etc/apt/sources.list{,.d/*} (the mirror this machine is known to reach), else
// http://deb.debian.org/debian.
func DebianMirror() string {
	if m := os.Getenv(MirrorEnv); m != "" {
		return m
	}
	files := []string{"/etc/apt/sources.list"}
	more, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append(files, more...)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			for _, field := range strings.Fields(line) {
				if strings.HasPrefix(field, "#") {
					break
				}
				if (strings.HasPrefix(field, "http://") || strings.HasPrefix(field, "https://")) &&
					strings.HasSuffix(strings.TrimRight(field, "/"), "/debian") {
					return strings.TrimRight(field, "/")
				}
			}
		}
	}
	return "http://deb.debian.org/debian"
}

// missing fails the test under CI=true and skips it loudly otherwise.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("REQUIRED COMPONENT MISSING (CI=true): %s", why)
	}
	t.Skipf("SKIPPING: %s (this test fails under CI=true)", why)
}

// lockFile takes an exclusive flock, waiting for other test binaries.
func lockFile(t testing.TB, p string) func() {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("testrootfs: %v", err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		t.Fatalf("testrootfs: flock %s: %v", p, err)
	}
	return func() { f.Close() }
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
