package mock

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

func testSpec(t *testing.T, pkgs ...string) *runtime.Spec {
	t.Helper()
	return &runtime.Spec{
		EnvID:  schema.SumString("env"),
		EnvDir: filepath.Join(t.TempDir(), "env", "x"),
		Manifest: schema.Normalized{
			ManifestVersion: 1, BaseImage: "rolling", SystemPackages: pkgs, RuntimeBackend: "mock",
		},
	}
}

func TestResolveMatchesOriginal(t *testing.T) {
	r, err := New(Options{}).Resolve(context.Background(), testSpec(t, "clang", "git"))
	if err != nil {
		t.Fatal(err)
	}
	// Spec 1.6: blake3("mock-image:rolling").
	if want := "8f5a576f14f6a9d22f7b7c901865a89ceee954b235faa365a3631098b1a7019e"; r.BaseImageDigest != want {
		t.Errorf("digest %s, want %s", r.BaseImageDigest, want)
	}
	want := []schema.ResolvedPackage{{Name: "clang", Version: Version}, {Name: "git", Version: Version}}
	if len(r.ResolvedPackages) != 2 || r.ResolvedPackages[0] != want[0] || r.ResolvedPackages[1] != want[1] {
		t.Errorf("packages %v, want %v", r.ResolvedPackages, want)
	}
}

func TestBuildWritesMarkers(t *testing.T) {
	spec := testSpec(t, "git")
	if err := New(Options{}).Build(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		".karapace-mock": "mock-env:" + spec.EnvID.String(),
		".pkg-git":       "git@0.0.0-mock",
	} {
		got, err := os.ReadFile(filepath.Join(spec.EnvDir, "upper", name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestBuildFailures(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		b    *Backend
		pkgs []string
		want error
	}{
		{"fail package", New(Options{}), []string{FailPackage}, runtime.ErrExecFailed},
		{"hostile package", New(Options{}), []string{"../x"}, runtime.ErrExecFailed},
		{"hook", New(Options{BuildHook: func(context.Context, *runtime.Spec) error { return os.ErrPermission }}), nil, os.ErrPermission},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.b.Build(ctx, testSpec(t, tc.pkgs...)); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := New(Options{BuildDelay: time.Hour}).Build(cctx, testSpec(t)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delayed build err = %v, want deadline", err)
	}
}

func TestExec(t *testing.T) {
	ctx := context.Background()
	b := New(Options{})
	spec := testSpec(t)
	for _, tc := range []struct {
		argv           []string
		stdin          string
		status         int
		stdout, stderr string
	}{
		{[]string{"echo", "hi there"}, "", 0, "mock-exec: echo hi there\n", ""},
		{[]string{"mock:exit", "7"}, "", 7, "mock-exec: mock:exit 7\n", ""},
		{[]string{"mock:stderr", "oops"}, "", 0, "", "oops\n"},
		{[]string{"mock:cat"}, "piped", 0, "piped", ""},
	} {
		var out, errb bytes.Buffer
		st, err := b.Exec(ctx, spec, runtime.Stdio{Stdin: strings.NewReader(tc.stdin), Stdout: &out, Stderr: &errb}, tc.argv)
		if err != nil || st != tc.status || out.String() != tc.stdout || errb.String() != tc.stderr {
			t.Errorf("%q: status %d err %v stdout %q stderr %q", tc.argv, st, err, out.String(), errb.String())
		}
	}
	if _, err := b.Exec(ctx, spec, runtime.Stdio{}, nil); !errors.Is(err, runtime.ErrExecFailed) {
		t.Errorf("empty argv: %v", err)
	}
	if st, err := b.Enter(ctx, spec, runtime.Stdio{}, nil); err != nil || st != 0 {
		t.Errorf("enter: %d %v", st, err)
	}
}

// TestSleepSessionStop runs a real session, sees it in Status and stops it.
func TestSleepSessionStop(t *testing.T) {
	ctx := context.Background()
	b := New(Options{})
	spec := testSpec(t)
	type result struct {
		st  int
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := b.Exec(ctx, spec, runtime.Stdio{}, []string{"mock:sleep", "30"})
		done <- result{st, err}
	}()
	var st runtime.Status
	for i := 0; i < 500 && !st.Running; i++ {
		time.Sleep(10 * time.Millisecond)
		var err error
		if st, err = b.Status(ctx, spec); err != nil {
			t.Fatal(err)
		}
	}
	if !st.Running || len(st.PIDs) != 1 {
		t.Fatalf("status %+v, want one live session", st)
	}
	if err := b.Stop(ctx, spec, time.Second); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.st != 143 {
		t.Errorf("stopped session: status %d err %v, want 143", r.st, r.err)
	}
	if st, _ := b.Status(ctx, spec); st.Running {
		t.Errorf("still running after stop: %+v", st)
	}
}

func TestStaleSessionRecordIgnored(t *testing.T) {
	spec := testSpec(t)
	dir := sessionsDir(spec.EnvDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// A pid that cannot be live with this start time, and garbage.
	_ = os.WriteFile(filepath.Join(dir, "1"), []byte("1 999999999999"), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "junk"), []byte("x"), 0o644)
	st, err := New(Options{}).Status(context.Background(), spec)
	if err != nil || st.Running {
		t.Fatalf("status %+v %v", st, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("stale records left: %v", ents)
	}
}
