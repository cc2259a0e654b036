//go:build linux

package core

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/runtime"
)

// TestPullOnNamespaceBackend: an environment pushed from one store and pulled into a
// fresh one runs at once on the real namespace backend: a file of its writable layer is
// there, busybox runs, and a file deleted in the source (a kernel whiteout) stays
// deleted. Needs user namespaces and busybox-static; under CI=true a missing component
// fails the test.
func TestPullOnNamespaceBackend(t *testing.T) {
	tarball, backend := namespaceFixture(t)
	engine := func(root string) *Engine {
		return newEngineAt(t, root, func(o *Options) {
			o.Backends = map[string]func() runtime.Backend{"namespace": func() runtime.Backend { return backend }}
		})
	}
	ctx := context.Background()
	srcRoot, dstRoot := t.TempDir(), t.TempDir()
	defer checkNoMountsUnder(t, srcRoot)
	defer checkNoMountsUnder(t, dstRoot)
	src := engine(srcRoot)
	path := writeManifestText(t, t.TempDir(), fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = %q\n", tarball))
	r, err := src.Build(ctx, path, BuildOptions{Name: "bb"})
	if err != nil {
		t.Fatal(err)
	}
	id := r.EnvID
	run := func(e *Engine, script string) (int, string) {
		t.Helper()
		var out bytes.Buffer
		code, err := e.Exec(ctx, id, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"/bin/busybox", "sh", "-c", script})
		if err != nil {
			t.Fatalf("exec %q: %v (output %q)", script, err, out.String())
		}
		return code, out.String()
	}
	if code, out := run(src, "echo pulled >/etc/added && rm /etc/group"); code != 0 {
		t.Fatalf("exec in source: %d %q", code, out)
	}
	// A push sends the base layer, captured when the environment was built. Stand in
	// for a build whose package installs wrote and deleted files: capture the upper as
	// it is now (a file and a 0/0 whiteout) as the base layer.
	base, err := src.st.captureBase(ctx, src.layout.UpperDir(id))
	if err != nil {
		t.Fatal(err)
	}
	m := inspect(t, src, id)
	m.BaseLayer = base.String()
	if err := src.st.metaPut(ctx, m); err != nil {
		t.Fatal(err)
	}

	rb := remote.NewMemory()
	if _, err := src.Push(ctx, id, rb, PushOptions{Tag: "bb"}); err != nil {
		t.Fatal(err)
	}
	dst := engine(dstRoot)
	if _, err := dst.Pull(ctx, "bb", rb); err != nil {
		t.Fatal(err)
	}
	if code, out := run(dst, "cat /etc/added; test -e /etc/group || echo group-deleted; test -e /etc/passwd && echo passwd-there"); code != 0 || out != "pulled\ngroup-deleted\npasswd-there\n" {
		t.Errorf("exec after pull: %d %q", code, out)
	}
	var out bytes.Buffer
	if code, err := dst.Exec(ctx, id, runtime.Stdio{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out}, []string{"/bin/busybox", "true"}); err != nil || code != 0 {
		t.Errorf("busybox true after pull: %d %v %q", code, err, out.String())
	}
	d, err := dst.Diff(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	// The pulled base layer is the built state.
	if d.HasDrift {
		t.Errorf("diff after pull: %+v", d)
	}
	if code, out := run(dst, "echo changed >> /etc/passwd"); code != 0 {
		t.Fatalf("change /etc/passwd: %d %q", code, out)
	}
	if d, err := dst.Diff(ctx, id); err != nil || fmt.Sprint(d.Modified) != "[etc/passwd]" || len(d.Added)+len(d.Removed) > 0 {
		t.Errorf("diff after a change (lower must be the image): %+v %v", d, err)
	}
	if err := dst.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := src.Destroy(ctx, id); err != nil {
		t.Fatal(err)
	}
	checkClean(t, dst)
}
