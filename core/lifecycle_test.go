package core

import (
	"context"
	"errors"
	"testing"

	"github.com/karapace/karapace/runtime"
)

func TestTransitions(t *testing.T) {
	all := []State{Defined, Built, Running, Frozen, Archived}
	// The original's table (spec 3.2), with Running -> Running added for concurrent
	// sessions.
	ok := map[[2]State]bool{
		{Defined, Built}: true,
		{Built, Built}:   true, {Built, Running}: true, {Built, Frozen}: true, {Built, Archived}: true,
		{Running, Built}: true, {Running, Running}: true, {Running, Frozen}: true,
		{Frozen, Built}: true, {Frozen, Archived}: true,
		{Archived, Built}: true,
	}
	for _, from := range all {
		for _, to := range all {
			err := checkTransition(from, to)
			if ok[[2]State{from, to}] != (err == nil) {
				t.Errorf("%s -> %s: err = %v", from, to, err)
			}
			if err != nil {
				if !errors.Is(err, ErrInvalidTransition) {
					t.Errorf("%s -> %s: %v is not ErrInvalidTransition", from, to, err)
				}
				// The original's text, then how to get out, where we know a way.
				want := "invalid state transition: " + from.String() + " -> " + to.String()
				if h := transitionHints[[2]State{from, to}]; h != "" {
					want += "; " + h
				}
				if err.Error() != want {
					t.Errorf("message %q, want %q", err, want)
				}
			}
		}
	}
}

func TestStateText(t *testing.T) {
	for _, s := range []State{Defined, Built, Running, Frozen, Archived} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%s: round trip gave %v, %v", s, back, err)
		}
		if err := back.UnmarshalText([]byte(s.String())); err != nil || back != s {
			t.Errorf("%s: lowercase parse gave %v, %v", s, back, err)
		}
	}
	if Frozen.String() != "frozen" {
		t.Errorf("Frozen.String() = %q", Frozen.String())
	}
	if _, err := ParseState("Melting"); err == nil {
		t.Error("ParseState accepted nonsense")
	}
	if _, err := State(42).MarshalText(); err == nil {
		t.Error("MarshalText accepted an invalid state")
	}
}

func TestRuntimeMessages(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	id := build(t, e, manifest(t, "git"))
	err := e.Stop(ctx, id)
	if want := "runtime error: environment '" + id.String() + "' is not running"; err == nil || err.Error() != want || !errors.Is(err, runtime.ErrNotRunning) {
		t.Errorf("stop: %v, want %q", err, want)
	}
	d := t.TempDir()
	_, err = e.Build(ctx, writeManifestText(t, d, "manifest_version = 1\n[base]\nimage = \"r\"\n[runtime]\nbackend = \"nosuch\"\n"), BuildOptions{})
	if want := "runtime error: backend 'nosuch' is not available on this system"; err == nil || err.Error() != want {
		t.Errorf("backend: %v, want %q", err, want)
	}
	_, err = e.Build(ctx, manifest(t, "git"), BuildOptions{Offline: true})
	if want := "runtime error: offline mode: cannot resolve system packages"; err == nil || err.Error() != want {
		t.Errorf("offline: %v, want %q", err, want)
	}
}
