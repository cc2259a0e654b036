package oci

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
)

func fakeHost(env map[string]string, onPath map[string]bool, hybrid bool) Host {
	return Host{
		Getenv: func(k string) string { return env[k] },
		LookPath: func(name string) (string, error) {
			if strings.HasPrefix(name, "/") {
				if onPath[name] {
					return name, nil
				}
				return "", exec.ErrNotFound
			}
			if onPath[name] {
				return "/usr/bin/" + name, nil
			}
			return "", exec.ErrNotFound
		},
		Version: func(_ context.Context, path string) (string, error) {
			if strings.Contains(path, "broken") {
				return "", errors.New("exit status 1")
			}
			return path + " version 1", nil
		},
		Hybrid: func() bool { return hybrid },
	}
}

func TestSelect(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		env    map[string]string
		path   map[string]bool
		hybrid bool
		want   string
		hide   bool
		errs   bool
	}{
		{name: "crun first", path: map[string]bool{"crun": true, "runc": true, "youki": true}, want: "crun"},
		{name: "runc next", path: map[string]bool{"runc": true, "youki": true}, want: "runc"},
		{name: "youki last", path: map[string]bool{"youki": true}, want: "youki"},
		{name: "none", path: map[string]bool{}, errs: true},
		{name: "override by name", env: map[string]string{EnvRuntime: "runc"}, path: map[string]bool{"crun": true, "runc": true}, want: "runc"},
		{name: "override by path", env: map[string]string{EnvRuntime: "/opt/crun"}, path: map[string]bool{"/opt/crun": true, "runc": true}, want: "crun", hybrid: true, hide: true},
		{name: "override missing", env: map[string]string{EnvRuntime: "youki"}, path: map[string]bool{"crun": true}, errs: true},
		{name: "override broken", env: map[string]string{EnvRuntime: "/opt/broken"}, path: map[string]bool{"/opt/broken": true, "crun": true}, errs: true},
		{name: "crun on hybrid", path: map[string]bool{"crun": true}, hybrid: true, want: "crun", hide: true},
		{name: "runc on hybrid", path: map[string]bool{"runc": true}, hybrid: true, want: "runc"},
	} {
		rt, err := Select(ctx, fakeHost(c.env, c.path, c.hybrid))
		if c.errs {
			if !errors.Is(err, runtime.ErrBackendUnavailable) {
				t.Errorf("%s: %+v %v, want ErrBackendUnavailable", c.name, rt, err)
			}
			continue
		}
		if err != nil || rt.Name != c.want || rt.HideUnified != c.hide || (len(rt.Workarounds) > 0) != c.hide {
			t.Errorf("%s: %+v %v, want %s (hide %t)", c.name, rt, err, c.want, c.hide)
		}
		if _, ok := c.env[EnvRuntime]; ok != rt.Override {
			t.Errorf("%s: Override %t", c.name, rt.Override)
		}
	}
	// A runtime whose --version fails is skipped.
	rt, err := Select(ctx, Host{
		Getenv:   func(string) string { return "" },
		LookPath: func(n string) (string, error) { return "/x/" + map[string]string{"crun": "broken-crun"}[n] + n, nil },
		Version:  fakeHost(nil, nil, false).Version,
		Hybrid:   func() bool { return false },
	})
	if err != nil || rt.Name != "runc" {
		t.Errorf("broken crun: %+v %v", rt, err)
	}
}
