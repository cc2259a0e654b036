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

// TestAptInNamespace: the same apt flow as TestAptEndToEnd, but through the namespace
// backend's sandbox (user, mount, PID namespaces; overlay over the image), as a build
// runs it.
func TestAptInNamespace(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIPPING: -short: apt in the namespace sandbox needs debootstrap and the Debian mirror")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := testrootfs.DebianServer(t, "bookworm")
	cache := image.NewCache(t.TempDir(), image.WithServer(srv.URL))
	ref, _ := image.Resolve("debian/bookworm")
	img, err := cache.Ensure(ctx, ref, image.EnsureOptions{})
	if err != nil {
		t.Fatal(err)
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
	m, err := pkgmgr.New(pkgmgr.Apt, r, pkgmgr.WithOutput(testLog{t}))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	resolved, err := m.Resolve(ctx, []string{"curl"})
	if err != nil {
		t.Fatal(err)
	}
	installed, err := m.Install(ctx, resolved)
	if err != nil {
		t.Fatal(err)
	}
	if installed[0] != resolved[0] {
		t.Errorf("installed %v, resolved %v", installed, resolved)
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
