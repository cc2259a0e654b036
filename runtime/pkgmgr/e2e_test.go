package pkgmgr_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/runtime/namespace"
	"github.com/karapace/karapace/runtime/pkgmgr"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/runtime/testrootfs"
	"github.com/karapace/karapace/schema"
)

// namespaceRunner runs package manager commands the way a build does: in the namespace
// sandbox, over an overlay of the image, with network, as root inside a user namespace.
type namespaceRunner struct {
	in sandbox.Inputs
}

func (r namespaceRunner) Run(ctx context.Context, argv []string, opts pkgmgr.RunOptions) (pkgmgr.Result, error) {
	in := r.in
	in.Argv = argv
	in.ExtraEnv = map[string]string{}
	for _, kv := range opts.Env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			in.ExtraEnv[k] = v
		}
	}
	plan, err := sandbox.Compute(in)
	if err != nil {
		return pkgmgr.Result{}, err
	}
	var stdout, stderr bytes.Buffer
	stdio := runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	if opts.Log != nil {
		stdio.Stdout, stdio.Stderr = io.MultiWriter(&stdout, opts.Log), io.MultiWriter(&stderr, opts.Log)
	}
	code, err := namespace.Run(ctx, plan, stdio, namespace.Options{})
	res := pkgmgr.Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: code}
	if err != nil && !errors.Is(err, runtime.ErrExecFailed) {
		return res, err
	}
	return res, nil
}

// TestAptEndToEnd: debootstrap bookworm -> LXC image server on loopback ->
// image.Ensure -> in the namespace sandbox over an overlay of the image, as a build runs
// it: apt refresh -> resolve curl and git to exact versions -> locked install of exactly
// those -> dpkg-query shows them, and git runs.
func TestAptEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: -short: apt in the namespace sandbox needs debootstrap and the Debian mirror")
	}
	if b, err := os.ReadFile("/proc/sys/user/max_user_namespaces"); err == nil && strings.TrimSpace(string(b)) == "0" {
		if os.Getenv("CI") == "true" {
			t.Fatal("REQUIRED COMPONENT MISSING (CI=true): user namespaces are disabled (user.max_user_namespaces = 0)")
		}
		t.Skip("SKIPPING: user namespaces are disabled (user.max_user_namespaces = 0); this test fails under CI=true")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := testrootfs.DebianServer(t, "bookworm")
	t.Setenv(image.ServerEnv, srv.URL)
	start := time.Now()
	cache := image.NewCache(t.TempDir())
	ref, err := image.Resolve("debian/bookworm")
	if err != nil {
		t.Fatal(err)
	}
	img, err := cache.Ensure(ctx, ref, image.EnsureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image %s ready in %v (digest %s)", ref.Display, time.Since(start).Round(time.Millisecond), img.Digest.Short())
	f, err := os.Open(testrootfs.DebianTarball(t, "bookworm"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := schema.HashReader(f)
	f.Close()
	if img.Digest != want {
		t.Errorf("image digest %s, want blake3 of the served tarball %s", img.Digest, want)
	}

	env := t.TempDir()
	upper, work := filepath.Join(env, "upper"), filepath.Join(env, "work")
	os.Mkdir(upper, 0o755)
	os.Mkdir(work, 0o755)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	ids, err := sandbox.IDMaps(sandbox.IDSource{User: u.Username, UID: uid, GID: gid})
	if err != nil {
		t.Fatal(err)
	}
	r := namespaceRunner{in: sandbox.Inputs{
		EnvID: schema.SumString("pkgmgr namespace test"),
		Lower: []string{img.Rootfs}, Upper: upper, Work: work, Build: true,
		Host:   sandbox.Host{Env: map[string]string{}, UID: uid, GID: gid, User: u.Username, Home: "/root", FS: sandbox.OSFS{}},
		UIDMap: ids.UID, GIDMap: ids.GID,
	}}
	m, err := pkgmgr.Open(r, []string{img.Rootfs}, pkgmgr.WithOutput(testLog{t}))
	if err != nil || m.Kind() != pkgmgr.Apt {
		t.Fatalf("Open = %v, %v", m, err)
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	resolved, err := m.Resolve(ctx, []string{"curl", "git"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range resolved {
		if p.Version == "" || p.Version == "unresolved" || strings.ContainsAny(p.Version, " \t") {
			t.Fatalf("resolved %+v", p)
		}
	}
	t.Logf("resolved %v", resolved)
	var pe *pkgmgr.PackageError
	_, err = m.Resolve(ctx, []string{"curl", "karapace-no-such-package"})
	if !errors.As(err, &pe) || !errors.Is(err, pkgmgr.ErrNotFound) || pe.Name != "karapace-no-such-package" {
		t.Errorf("unknown package: %v", err)
	}
	// Resolving installed nothing: the install happens once, below.
	if _, err := m.Installed(ctx, []string{"curl"}); !errors.Is(err, pkgmgr.ErrNotFound) {
		t.Errorf("curl installed by Resolve? %v", err)
	}
	_, err = m.Install(ctx, []pkgmgr.Package{{Name: "curl", Version: "0.0.1-karapace"}})
	if !errors.As(err, &pe) || !errors.Is(err, pkgmgr.ErrVersionUnavailable) || pe.Name != "curl" || pe.Version != "0.0.1-karapace" {
		t.Errorf("unavailable locked version: %v", err)
	}

	installed, err := m.Install(ctx, resolved)
	if err != nil {
		t.Fatal(err)
	}
	again, err := m.Installed(ctx, []string{"curl", "git"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range resolved {
		if installed[i] != resolved[i] || again[i] != resolved[i] {
			t.Errorf("installed %v / dpkg-query %v, want %v", installed[i], again[i], resolved[i])
		}
	}
	res, err := r.Run(ctx, []string{"git", "--version"}, pkgmgr.RunOptions{Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil || res.ExitCode != 0 || !strings.HasPrefix(string(res.Stdout), "git version ") {
		t.Errorf("git --version: %v %d %q %q", err, res.ExitCode, res.Stdout, res.Stderr)
	}
	// The install went into the upper layer; the image is untouched.
	if _, err := os.Stat(filepath.Join(upper, "usr/bin/curl")); err != nil {
		t.Errorf("curl not in the upper layer: %v", err)
	}
	if _, err := os.Stat(filepath.Join(img.Rootfs, "usr/bin/curl")); err == nil {
		t.Error("the install wrote into the image rootfs")
	}
	if err := cache.Verify(ctx, img.Key); err != nil {
		t.Errorf("image changed by the build: %v", err)
	}
}

type testLog struct{ t *testing.T }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
