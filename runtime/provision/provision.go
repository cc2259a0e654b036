// Package provision resolves and installs an environment's packages with the image's
// own package manager. It is shared by every backend that can run a command in a build
// sandbox (namespace, oci): the backend supplies the sandbox, provision does the rest.
//
// provision may import schema, runtime, runtime/image, runtime/pkgmgr. It starts no
// process itself.
package provision

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/renameio/v2"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/image"
	"github.com/karapace/karapace/runtime/pkgmgr"
	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/schema"
)

// The environment directory's layout, shared by the backends.
const (
	UpperDir  = "upper" // the writable layer
	WorkDir   = "work"  // overlayfs's work directory
	LowerLink = "lower" // symlink to the image rootfs (drift classification reads it)
)

// Sandbox returns a runner for package-manager commands in a build sandbox: an overlay
// of upper (writable, with work) over lower.
type Sandbox func(ctx context.Context, lower, upper, work string) (pkgmgr.Runner, error)

// Resolve returns the image's digest and the exact version of every system package of
// the manifest, as the image's package manager would install it, asked in a throwaway
// overlay that is removed afterwards.
func Resolve(ctx context.Context, spec *runtime.Spec, img image.Image, sb Sandbox, log *slog.Logger) (schema.Resolution, error) {
	res := schema.Resolution{BaseImageDigest: img.Digest.String(), ResolvedPackages: []schema.ResolvedPackage{}}
	names := spec.Manifest.SystemPackages
	if len(names) == 0 {
		return res, nil
	}
	if spec.Offline {
		return schema.Resolution{}, fmt.Errorf("%w: cannot resolve system packages", runtime.ErrOffline)
	}
	tmp, err := os.MkdirTemp("", "karapace-resolve-")
	if err != nil {
		return schema.Resolution{}, err
	}
	defer RemoveScratch(tmp, log)
	upper, work := filepath.Join(tmp, UpperDir), filepath.Join(tmp, WorkDir)
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return schema.Resolution{}, err
		}
	}
	run, err := sb(ctx, img.Rootfs, upper, work)
	if err != nil {
		return schema.Resolution{}, err
	}
	pm, err := pkgmgr.Open(run, []string{img.Rootfs}, pkgmgr.WithLogger(log))
	if err != nil {
		return schema.Resolution{}, err
	}
	if err := pm.Refresh(ctx); err != nil {
		return schema.Resolution{}, err
	}
	pkgs, err := pm.Resolve(ctx, names)
	if err != nil {
		return schema.Resolution{}, err
	}
	for _, p := range pkgs {
		res.ResolvedPackages = append(res.ResolvedPackages, schema.ResolvedPackage{Name: p.Name, Version: p.Version})
	}
	return res, nil
}

// Build lays out spec.EnvDir (upper, work, any extra dirs, the lower link to the image)
// and installs spec.Packages, at their exact versions, into upper. note is the progress
// line announcing the install ("" for the default).
func Build(ctx context.Context, spec *runtime.Spec, img image.Image, sb Sandbox, note string, log *slog.Logger, extraDirs ...string) error {
	upper, work := filepath.Join(spec.EnvDir, UpperDir), filepath.Join(spec.EnvDir, WorkDir)
	for _, d := range append([]string{upper, work}, extraDirs...) {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	link := filepath.Join(spec.EnvDir, LowerLink)
	_ = os.Remove(link)
	if err := os.Symlink(img.Rootfs, link); err != nil {
		return fmt.Errorf("record the image of the environment: %w", err)
	}
	if len(spec.Packages) == 0 {
		return nil
	}
	if spec.Offline {
		return fmt.Errorf("%w: cannot install system packages", runtime.ErrOffline)
	}
	run, err := sb(ctx, img.Rootfs, upper, work)
	if err != nil {
		return err
	}
	opts := []pkgmgr.Option{pkgmgr.WithLogger(log)}
	if spec.Progress != nil {
		opts = append(opts, pkgmgr.WithOutput(progressWriter(spec.Progress)))
		if note == "" {
			note = fmt.Sprintf("installing %d packages", len(spec.Packages))
		}
		spec.Progress(note)
	}
	pm, err := pkgmgr.Open(run, []string{upper, img.Rootfs}, opts...)
	if err != nil {
		return err
	}
	if err := pm.Refresh(ctx); err != nil {
		return err
	}
	pkgs := make([]pkgmgr.Package, len(spec.Packages))
	for i, p := range spec.Packages {
		pkgs[i] = pkgmgr.Package{Name: p.Name, Version: p.Version}
	}
	if _, err := pm.Install(ctx, pkgs); err != nil {
		return err
	}
	// The downloaded package files would stay in the writable layer (and so in the
	// base layer and every snapshot); a failed clean costs space, not correctness.
	if err := pm.Clean(ctx); err != nil {
		log.Warn("clean the package cache", "err", err)
	}
	return nil
}

// RemoveScratch deletes a session's or resolver's scratch directory. The kernel
// creates overlayfs's work/work without permissions, so directories are made
// accessible first.
func RemoveScratch(dir string, log *slog.Logger) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("scratch cleanup", "dir", dir, "err", err)
	}
}

// installLine matches the line each package manager prints as it installs one package
// (apt's dpkg, dnf and dnf5, zypper, pacman); the package name is the last group.
var installLine = regexp.MustCompile(`^(?:Setting up|Installing\s*:|\[\s*\d+/\d+\] Installing|\(\s*\d+/\d+\) [Ii]nstalling:?) +(\S+)`)

// progressWriter sums a package manager's output up as Progress calls: one line per
// package installed ("installing NAME"), nothing of the rest (download meters, dpkg's
// "(Reading database ... 5%"). A failed command's error carries its own output.
type progressWriter func(string)

func (p progressWriter) Write(b []byte) (int, error) {
	for _, l := range strings.FieldsFunc(string(b), func(r rune) bool { return r == '\n' || r == '\r' }) {
		if m := installLine.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			p("installing " + m[1])
		}
	}
	return len(b), nil
}

// Image makes the environment's base image available in the cache (downloading it
// unless spec.Offline), passing its progress messages to spec.Progress and the byte
// counts of a download to spec.Transfer.
func Image(ctx context.Context, spec *runtime.Spec, images *image.Cache) (image.Image, error) {
	ref, err := image.Resolve(spec.Manifest.BaseImage)
	if err != nil {
		return image.Image{}, err
	}
	progress := func(e image.Event) {
		switch {
		case e.Message != "" && spec.Progress != nil:
			spec.Progress(e.Message)
		case e.Message == "" && e.Phase == image.PhaseDownload && spec.Transfer != nil:
			spec.Transfer(e.Done, e.Total)
		}
	}
	return images.Ensure(ctx, ref, image.EnsureOptions{Offline: spec.Offline, Progress: progress})
}

// Lower returns the image rootfs a built environment runs on: the target of its lower
// link, or (for an environment built before the link existed) the image cache's rootfs
// of its base image. It fails with runtime.ErrNotBuilt when the environment has no upper
// layer and runtime.ErrImageNotFound when the rootfs is gone.
func Lower(spec *runtime.Spec, images *image.Cache) (string, error) {
	if _, err := os.Stat(filepath.Join(spec.EnvDir, UpperDir)); err != nil {
		return "", fmt.Errorf("%w: %s", runtime.ErrNotBuilt, spec.EnvID.Short())
	}
	lower, err := os.Readlink(filepath.Join(spec.EnvDir, LowerLink))
	if err != nil {
		ref, rerr := image.Resolve(spec.Manifest.BaseImage)
		if rerr != nil {
			return "", rerr
		}
		lower = filepath.Join(images.Dir(ref.Key), "rootfs")
	}
	if _, err := os.Stat(filepath.Join(lower, "etc")); err != nil {
		return "", fmt.Errorf("%w: base image rootfs %s is missing or corrupted; run 'karapace rebuild'", runtime.ErrImageNotFound, lower)
	}
	return lower, nil
}

// Files the backends write into an environment's directory for its sessions and build
// steps, bound read-only over the image's (sandbox.Inputs.HostsFile, HostnameFile).
const (
	HostsFile    = "hosts"
	HostnameFile = "hostname"
)

// HostFiles brings the environment's /etc/hosts (the host's plus its hostname,
// sandbox.HostsFor) and /etc/hostname up to date in envDir, writing only what changed,
// and returns their paths. The host's /etc/hosts is read now: a change there reaches an
// environment at its next session that the engine starts.
func HostFiles(envDir string, id schema.EnvID) (hosts, hostname string, err error) {
	name := sandbox.Hostname(id)
	hostHosts, err := os.ReadFile("/etc/hosts")
	if err != nil && !os.IsNotExist(err) {
		return "", "", fmt.Errorf("read the host's /etc/hosts: %w", err)
	}
	// Private, as the store makes environment directories.
	if err := os.MkdirAll(envDir, 0o700); err != nil {
		return "", "", err
	}
	hosts, hostname = filepath.Join(envDir, HostsFile), filepath.Join(envDir, HostnameFile)
	for _, f := range []struct {
		path string
		data []byte
	}{{hosts, sandbox.HostsFor(hostHosts, name)}, {hostname, []byte(name + "\n")}} {
		if old, err := os.ReadFile(f.path); err == nil && string(old) == string(f.data) {
			continue
		}
		if err := renameio.WriteFile(f.path, f.data, 0o644); err != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return hosts, hostname, nil
}
