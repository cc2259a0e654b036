package schema

import "testing"

func TestResolveMounts(t *testing.T) {
	n := &Normalized{Mounts: []Mount{
		{Label: "a", HostPath: "./", ContainerPath: "/workspace"},
		{Label: "b", HostPath: "../shared", ContainerPath: "/shared"},
		{Label: "c", HostPath: "~/.cache", ContainerPath: "/cache"},
		{Label: "d", HostPath: "/data", ContainerPath: "/data"},
		{Label: "e", HostPath: "src", ContainerPath: "/src"},
	}}
	got := n.ResolveMounts("/home/u/web").Mounts
	want := []string{"/home/u/web", "/home/u/shared", "~/.cache", "/data", "/home/u/web/src"}
	for i, m := range got {
		if m.HostPath != want[i] {
			t.Errorf("%s: %q, want %q", m.Label, m.HostPath, want[i])
		}
	}
	if n.Mounts[0].HostPath != "./" {
		t.Error("ResolveMounts changed its receiver")
	}
	if got := n.ResolveMounts("rel").Mounts[0].HostPath; got != "./" {
		t.Errorf("relative dir: %q", got)
	}
}

// The identity of a lock hashes its mounts as stored: an old lock with "./" keeps the
// id the original gives it, and a resolved lock has another (drift test: a change of
// either value changes ids of existing environments).
func TestRelativeMountIdentity(t *testing.T) {
	n := &Normalized{ManifestVersion: 1, BaseImage: "rolling", RuntimeBackend: "mock",
		Mounts: []Mount{{Label: "workspace", HostPath: "./", ContainerPath: "/workspace"}}}
	old := NewLock(n, MockResolution(n))
	if !old.HasRelativeMounts() {
		t.Error("old lock: HasRelativeMounts false")
	}
	if got := old.EnvID.String(); got != "c1624077970f24c28ec660dde39d7538009935d6fcafa9100247212ea9d0e4ab" {
		t.Errorf("old lock id %s", got)
	}
	back, err := ParseLock(old.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := back.VerifyIntegrity(); err != nil {
		t.Errorf("old lock no longer verifies: %v", err)
	}
	r := n.ResolveMounts("/home/u/web")
	abs := NewLock(r, MockResolution(r))
	if abs.HasRelativeMounts() {
		t.Error("resolved lock: HasRelativeMounts true")
	}
	if got := abs.EnvID.String(); got != "9cbbbeab9c7d6d88469dcd2599645c0c18eaaa27876050a184fccd971018bb3f" {
		t.Errorf("resolved lock id %s", got)
	}
	if r2 := n.ResolveMounts("/home/u/api"); NewLock(r2, MockResolution(r2)).EnvID == abs.EnvID {
		t.Error("two project directories give one id")
	}
}
