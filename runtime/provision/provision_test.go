package provision

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/runtime/pkgmgr"
	"github.com/karapace/karapace/schema"
)

func noSandbox(t *testing.T) Sandbox {
	return func(context.Context, string, string, string) (pkgmgr.Runner, error) {
		t.Fatal("the sandbox was asked for although nothing is to be installed")
		return nil, nil
	}
}

// Without packages, Resolve returns the image digest and Build lays out the environment
// directory; offline, packages are refused before any sandbox starts. (Installing
// through a real sandbox is tested by the namespace and oci backends.)
func TestLayoutAndOffline(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	img := image.Image{Rootfs: t.TempDir(), Digest: schema.SumString("image")}
	spec := &runtime.Spec{EnvDir: filepath.Join(t.TempDir(), "env")}
	res, err := Resolve(ctx, spec, img, noSandbox(t), log)
	if err != nil || res.BaseImageDigest != img.Digest.String() || res.ResolvedPackages == nil || len(res.ResolvedPackages) != 0 {
		t.Fatalf("resolve %+v %v", res, err)
	}
	extra := filepath.Join(spec.EnvDir, "sessions")
	if err := Build(ctx, spec, img, noSandbox(t), "", log, extra); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{UpperDir, WorkDir, "sessions"} {
		if fi, err := os.Stat(filepath.Join(spec.EnvDir, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v", d, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(spec.EnvDir, LowerLink)); err != nil || l != img.Rootfs {
		t.Errorf("lower link %q %v", l, err)
	}
	spec.Offline = true
	spec.Manifest.SystemPackages = []string{"git"}
	spec.Packages = []schema.ResolvedPackage{{Name: "git", Version: "1"}}
	if _, err := Resolve(ctx, spec, img, noSandbox(t), log); !errors.Is(err, runtime.ErrOffline) {
		t.Errorf("offline resolve: %v", err)
	}
	if err := Build(ctx, spec, img, noSandbox(t), "", log); !errors.Is(err, runtime.ErrOffline) {
		t.Errorf("offline build: %v", err)
	}
}

// RemoveScratch deletes a tree whose directories lost their permissions, as overlayfs
// leaves work/work.
func TestRemoveScratch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "scratch")
	locked := filepath.Join(dir, "work", "work")
	if err := os.MkdirAll(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(locked, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	RemoveScratch(dir, slog.New(slog.DiscardHandler))
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("scratch left: %v", err)
	}
}

// Lower: not built, built on a missing image, built on a present one.
func TestLower(t *testing.T) {
	rootfs := t.TempDir()
	spec := &runtime.Spec{EnvDir: filepath.Join(t.TempDir(), "env")}
	images := image.NewCache(t.TempDir())
	if _, err := Lower(spec, images); !errors.Is(err, runtime.ErrNotBuilt) {
		t.Fatalf("unbuilt: %v", err)
	}
	img := image.Image{Rootfs: rootfs, Digest: schema.SumString("image")}
	if err := Build(context.Background(), spec, img, noSandbox(t), "", slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if _, err := Lower(spec, images); !errors.Is(err, runtime.ErrImageNotFound) {
		t.Fatalf("image without /etc: %v", err)
	}
	if err := os.Mkdir(filepath.Join(rootfs, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := Lower(spec, images); err != nil || got != rootfs {
		t.Fatalf("Lower = %q, %v", got, err)
	}
}

// Package manager output is summed up as one "installing NAME" line per package.
func TestProgressWriterSummary(t *testing.T) {
	var got []string
	w := progressWriter(func(s string) { got = append(got, s) })
	w.Write([]byte("(Reading database ... 5%\r(Reading database ... 100%\nUnpacking git (1:2.39.5-0+deb12u1) ...\nSetting up git (1:2.39.5-0+deb12u1) ...\n" +
		"  Installing       : make-1:4.4.1-6.fc41.x86_64     3/10\n[ 2/10] Installing curl-0:8.9.1-3.fc41.x86_64\n" +
		"(1/3) Installing: vim-9.1-1.1.x86_64 ...[done]\n(2/3) installing tmux    [####] 100%\nGet:1 http://deb.debian.org bookworm/main amd64 git\n"))
	want := "installing git,installing make-1:4.4.1-6.fc41.x86_64,installing curl-0:8.9.1-3.fc41.x86_64,installing vim-9.1-1.1.x86_64,installing tmux"
	if strings.Join(got, ",") != want {
		t.Errorf("got %q\nwant %q", strings.Join(got, ","), want)
	}
}
