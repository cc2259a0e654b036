// Package mock is the deterministic runtime backend behind `[runtime] backend = "mock"`.
// It runs nothing real: resolution pins every package to 0.0.0-mock, a build writes
// marker files into the environment's upper directory, and exec echoes its argv. It is
// a product feature for fast engine and CLI tests, behaving as the original's mock, with
// a few documented mock-only knobs (see Exec) so tests can reach every path.
//
// Sessions that last (the "mock:sleep" command) are real child processes, recorded as
// <env>/sessions/<pid> like the real backends record theirs, so Status and Stop act on
// real processes.
//
// mock imports runtime and schema only.
package mock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// Name is the manifest backend name that selects this backend.
const Name = "mock"

// Version is the version the mock resolver gives every package.
const Version = "0.0.0-mock"

// FailPackage is a package name the mock refuses to build: a manifest listing it makes
// Build fail after creating the environment's files, so tests can exercise rollback.
const FailPackage = "mock-fail-build"

// Options are test seams. The zero value is the original's mock.
type Options struct {
	// BuildDelay makes Build take this long (cancelled by ctx), so tests can interrupt
	// a build midway.
	BuildDelay time.Duration
	// BuildHook, when set, runs at the end of Build; its error fails the build.
	BuildHook func(ctx context.Context, spec *runtime.Spec) error
}

// Backend is the mock backend. It keeps no state in memory: sessions live on disk.
type Backend struct {
	opts Options
}

// New returns a mock backend.
func New(opts Options) *Backend { return &Backend{opts: opts} }

var _ runtime.Backend = (*Backend)(nil)

// Name returns "mock".
func (b *Backend) Name() string { return Name }

// Available always succeeds: the mock needs nothing from the host.
func (b *Backend) Available(context.Context) error { return nil }

// Resolve pins the base image to blake3("mock-image:<image>") and every system package
// to 0.0.0-mock, as the original's mock.
func (b *Backend) Resolve(ctx context.Context, spec *runtime.Spec) (schema.Resolution, error) {
	if err := ctx.Err(); err != nil {
		return schema.Resolution{}, err
	}
	r := schema.Resolution{
		BaseImageDigest:  schema.SumString("mock-image:" + spec.Manifest.BaseImage).String(),
		ResolvedPackages: make([]schema.ResolvedPackage, 0, len(spec.Manifest.SystemPackages)),
	}
	for _, p := range spec.Manifest.SystemPackages {
		r.ResolvedPackages = append(r.ResolvedPackages, schema.ResolvedPackage{Name: p, Version: Version})
	}
	return r, nil
}

// Build creates <env>/upper and writes `.karapace-mock` (content `mock-env:<id>`) and,
// per system package, `.pkg-<name>` (content `<name>@0.0.0-mock`).
func (b *Backend) Build(ctx context.Context, spec *runtime.Spec) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	upper := filepath.Join(spec.EnvDir, "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return fmt.Errorf("mock build: %w", err)
	}
	if err := os.WriteFile(filepath.Join(upper, ".karapace-mock"), []byte("mock-env:"+spec.EnvID.String()), 0o644); err != nil {
		return fmt.Errorf("mock build: %w", err)
	}
	fail := false
	for _, p := range spec.Manifest.SystemPackages {
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, "/\x00") {
			return fmt.Errorf("%w: mock build: package name %q cannot name a file", runtime.ErrExecFailed, p)
		}
		if err := os.WriteFile(filepath.Join(upper, ".pkg-"+p), []byte(p+"@"+Version), 0o644); err != nil {
			return fmt.Errorf("mock build: %w", err)
		}
		fail = fail || p == FailPackage
	}
	if b.opts.BuildDelay > 0 {
		t := time.NewTimer(b.opts.BuildDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if fail {
		return fmt.Errorf("%w: mock build: package %s fails by design", runtime.ErrExecFailed, FailPackage)
	}
	if b.opts.BuildHook != nil {
		return b.opts.BuildHook(ctx, spec)
	}
	return nil
}

// Destroy ends the environment's sessions. The engine deletes the directory.
func (b *Backend) Destroy(ctx context.Context, spec *runtime.Spec) error {
	return b.Stop(ctx, spec, 0)
}

// Enter with no argv returns 0 at once (the original's mock); with argv it is Exec.
func (b *Backend) Enter(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, ctx.Err()
	}
	return b.Exec(ctx, spec, stdio, argv)
}

// Exec writes `mock-exec: <argv joined by spaces>` and a newline to stdout and returns
// 0, as the original's mock. Mock-only commands, for tests:
//
//	mock:exit N      writes the usual line, returns exit status N
//	mock:stderr TEXT writes TEXT and a newline to stderr, returns 0
//	mock:cat         copies stdin to stdout, returns 0
//	mock:sleep D     runs a real `sleep D` child recorded as a session (Status and Stop
//	                 see it); returns its status (143 when stopped with SIGTERM).
//	                 Cancelling ctx sends it SIGTERM.
func (b *Backend) Exec(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, argv []string) (int, error) {
	if len(argv) == 0 {
		return 0, fmt.Errorf("%w: mock exec: empty command", runtime.ErrExecFailed)
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	stdout, stderr := writerOr(stdio.Stdout), writerOr(stdio.Stderr)
	switch argv[0] {
	case "mock:stderr":
		_, err := fmt.Fprintln(stderr, strings.Join(argv[1:], " "))
		return 0, err
	case "mock:cat":
		if stdio.Stdin == nil {
			return 0, nil
		}
		_, err := io.Copy(stdout, stdio.Stdin)
		return 0, err
	case "mock:sleep":
		if len(argv) != 2 {
			return 0, fmt.Errorf("%w: mock exec: usage: mock:sleep SECONDS", runtime.ErrExecFailed)
		}
		return b.sleep(ctx, spec, stdio, argv[1])
	}
	if _, err := fmt.Fprintf(stdout, "mock-exec: %s\n", strings.Join(argv, " ")); err != nil {
		return 0, err
	}
	if argv[0] == "mock:exit" {
		if len(argv) != 2 {
			return 0, fmt.Errorf("%w: mock exec: usage: mock:exit N", runtime.ErrExecFailed)
		}
		n, err := strconv.Atoi(argv[1])
		if err != nil || n < 0 || n > 255 {
			return 0, fmt.Errorf("%w: mock exec: bad exit status %q", runtime.ErrExecFailed, argv[1])
		}
		return n, nil
	}
	return 0, nil
}

func writerOr(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// sleep runs a real child so that sessions have a real process behind them.
func (b *Backend) sleep(ctx context.Context, spec *runtime.Spec, stdio runtime.Stdio, arg string) (int, error) {
	if _, err := strconv.ParseFloat(arg, 64); err != nil {
		return 0, fmt.Errorf("%w: mock exec: bad duration %q", runtime.ErrExecFailed, arg)
	}
	cmd := exec.Command("sleep", arg)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.Stdin, stdio.Stdout, stdio.Stderr
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("%w: mock exec: %v", runtime.ErrExecFailed, err)
	}
	pid := cmd.Process.Pid
	rec, err := recordSession(spec.EnvDir, pid)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return 0, err
	}
	defer os.Remove(rec)
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			_ = cmd.Process.Signal(syscall.SIGTERM)
		case <-done:
		}
	}()
	err = cmd.Wait()
	close(done)
	return exitStatus(cmd, err)
}

func exitStatus(cmd *exec.Cmd, err error) (int, error) {
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return 0, fmt.Errorf("%w: mock exec: %v", runtime.ErrExecFailed, err)
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return cmd.ProcessState.ExitCode(), nil
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}
