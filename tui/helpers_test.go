package tui

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/uniseg"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/runtime/mock"
	"github.com/karapace/karapace/schema"
)

func mockBackends() map[string]func() runtime.Backend {
	return map[string]func() runtime.Backend{mock.Name: func() runtime.Backend { return mock.New(mock.Options{}) }}
}

func newEngine(t testing.TB, root string) *core.Engine {
	t.Helper()
	e, err := core.New(context.Background(), core.Options{StoreRoot: root, Backends: mockBackends()})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// buildEnv builds a mock environment named name (when not empty) from a manifest with
// the given packages, in a project directory of its own.
func buildEnv(t testing.TB, e *core.Engine, name string, pkgs ...string) schema.EnvID {
	t.Helper()
	q := make([]string, len(pkgs))
	for i, p := range pkgs {
		q[i] = fmt.Sprintf("%q", p)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "karapace.toml")
	text := fmt.Sprintf("manifest_version = 1\n\n[base]\nimage = \"rolling\"\n\n[system]\npackages = [%s]\n\n[runtime]\nbackend = \"mock\"\n", strings.Join(q, ", "))
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := e.Build(context.Background(), p, core.BuildOptions{Name: name})
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	return r.EnvID
}

func runtimeStdio() runtime.Stdio {
	return runtime.Stdio{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard}
}

func inspect(t testing.TB, e *core.Engine, id schema.EnvID) *core.Env {
	t.Helper()
	m, err := e.Inspect(context.Background(), id)
	if err != nil {
		t.Fatalf("inspect: %v", err)
	}
	return m
}

// harness runs the UI on a simulation screen in the background.
type harness struct {
	t    *testing.T
	u    *ui
	scr  tcell.SimulationScreen
	root string
	eng  *core.Engine // a second Engine on the same store, for the test's own checks
	done chan error
}

type harnessOpt func(*Options)

func start(t *testing.T, root string, w, h int, mods ...harnessOpt) *harness {
	t.Helper()
	scr := tcell.NewSimulationScreen("UTF-8")
	opts := Options{StoreRoot: root, Backends: mockBackends(), Screen: scr, Version: "0.1.0-test", PollInterval: 50 * time.Millisecond}
	for _, m := range mods {
		m(&opts)
	}
	u, err := newUI(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	scr.SetSize(w, h)
	hs := &harness{t: t, u: u, scr: scr, root: root, eng: newEngine(t, root), done: make(chan error, 1)}
	go func() { hs.done <- u.run() }()
	t.Cleanup(func() {
		u.stop()
		select {
		case <-hs.done:
		case <-time.After(10 * time.Second):
			t.Error("the UI did not stop within 10 s")
		}
	})
	hs.waitFor("the first list", func(s string) bool {
		return strings.Contains(s, "Environments (") && !strings.Contains(s, "loading…")
	})
	return hs
}

// do runs f on the UI goroutine and waits for it.
func (h *harness) do(f func()) {
	h.t.Helper()
	ran := make(chan struct{})
	if !h.u.post(func() { f(); close(ran) }) {
		h.t.Fatal("the UI has stopped")
	}
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		h.t.Fatal("the UI goroutine did not run an update within 10 s")
	}
}

// text returns the screen as lines, read on the UI goroutine (the only one drawing).
func (h *harness) text() string {
	h.t.Helper()
	var out string
	h.do(func() {
		cells, w, hh := h.scr.GetContents()
		var b strings.Builder
		for y := 0; y < hh; y++ {
			for x := 0; x < w; x++ {
				c := cells[y*w+x]
				if len(c.Runes) == 0 || c.Runes[0] == 0 {
					b.WriteByte(' ')
					continue
				}
				b.WriteString(string(c.Runes))
				if uniseg.StringWidth(string(c.Runes)) == 2 {
					x++ // the wide character's second cell
				}
			}
			b.WriteByte('\n')
		}
		out = b.String()
	})
	return out
}

// cell returns the style of the cell at (x, y).
func (h *harness) cellStyle(x, y int) tcell.Style {
	var st tcell.Style
	h.do(func() {
		cells, w, hh := h.scr.GetContents()
		if x < w && y < hh {
			st = cells[y*w+x].Style
		}
	})
	return st
}

// line returns the screen line containing sub, and its row, or -1.
func (h *harness) line(sub string) (string, int) {
	for i, l := range strings.Split(h.text(), "\n") {
		if strings.Contains(l, sub) {
			return l, i
		}
	}
	return "", -1
}

func (h *harness) waitFor(what string, pred func(screen string) bool) string {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := h.text()
		if pred(s) {
			return s
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s; the screen:\n%s", what, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) waitText(sub string) string {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("%q on the screen", sub), func(s string) bool { return strings.Contains(s, sub) })
}

func (h *harness) waitGone(sub string) string {
	h.t.Helper()
	return h.waitFor(fmt.Sprintf("%q to leave the screen", sub), func(s string) bool { return !strings.Contains(s, sub) })
}

func (h *harness) key(k tcell.Key) { h.scr.InjectKey(k, 0, tcell.ModNone) }

func (h *harness) keys(s string) {
	for _, r := range s {
		h.scr.InjectKey(tcell.KeyRune, r, tcell.ModNone)
	}
}

// state reads a piece of UI state on the UI goroutine.
func state[T any](h *harness, f func(u *ui) T) T {
	var v T
	h.do(func() { v = f(h.u) })
	return v
}

// waitState waits until the environment reaches want in the store.
func (h *harness) waitState(id schema.EnvID, want core.State) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if got := inspect(h.t, h.eng, id).State; got == want {
			return
		} else if time.Now().After(deadline) {
			h.t.Fatalf("state %s, want %s; the screen:\n%s", got, want, h.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stopped waits for Run to return and gives its error.
func (h *harness) stopped() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.done <- err // for Cleanup
		return err
	case <-time.After(10 * time.Second):
		h.t.Fatal("the UI did not quit")
		return nil
	}
}

// idle waits until no action is running, so that its outcome cannot land after the
// test's next step.
func (h *harness) idle() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for state(h, func(u *ui) string { return u.busy }) != "" {
		if time.Now().After(deadline) {
			h.t.Fatalf("an action is still running; the screen:\n%s", h.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStatus waits until the status message (whole, not clipped to the screen width)
// contains sub.
func (h *harness) waitStatus(sub string) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(state(h, func(u *ui) string { return u.statusMsg }), sub) {
		if time.Now().After(deadline) {
			h.t.Fatalf("the status never said %q; the screen:\n%s", sub, h.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
