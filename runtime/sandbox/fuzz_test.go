package sandbox

import (
	"errors"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// FuzzCheckMount: whatever the paths, CheckMount never panics, only fails with a policy
// class, and anything it allows is an absolute clean source below an allowed root and
// outside /dev, bound at an allowed destination.
func FuzzCheckMount(f *testing.F) {
	for _, s := range [][2]string{
		{"/home/alice/proj", "/p"}, {"/homeevil", "/x"}, {"~/../../etc", "/x"}, {"./src", "/src"},
		{"~/link/x", "/x"}, {"../../..", "/y"}, {"/tmp/escape/lib", "/z"}, {"~", "/proc/1"},
		{"/home/alice/devlink", "/dev/x"}, {"//home//alice/./proj", "/a/../b"},
	} {
		f.Add(s[0], s[1])
	}
	h := aliceHost()
	roots := MountRoots(h)
	f.Fuzz(func(t *testing.T, host, container string) {
		r, err := CheckMount(schema.Mount{Label: "f", HostPath: host, ContainerPath: container}, "/home/alice/proj", h)
		if err != nil {
			if !errors.Is(err, runtime.ErrMountDenied) && !errors.Is(err, runtime.ErrDeviceDenied) {
				t.Fatalf("CheckMount(%q, %q): unclassified error %v", host, container, err)
			}
			return
		}
		if CheckContainerPath(container) != nil {
			t.Fatalf("destination %q allowed", container)
		}
		if !strings.HasPrefix(r.Source, "/") || under(r.Source, "/dev") {
			t.Fatalf("source %q allowed for %q", r.Source, host)
		}
		ok := false
		for _, root := range roots {
			ok = ok || under(r.Source, root)
		}
		if !ok {
			t.Fatalf("source %q (from %q) is outside %v", r.Source, host, roots)
		}
		// The allowed source, resolved again, stays where it was.
		if again, err := resolveExisting(h.FS, r.Source); err != nil || again != r.Source {
			t.Fatalf("source %q resolves further to %q (%v)", r.Source, again, err)
		}
	})
}
