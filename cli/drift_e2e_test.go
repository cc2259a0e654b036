package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

type driftResult struct {
	Added    []string `json:"added"`
	Modified []string `json:"modified"`
	Removed  []string `json:"removed"`
	HasDrift bool     `json:"has_drift"`
}

type snapshotsJSON struct {
	Snapshots []struct {
		Key       string `json:"restore_hash"`
		CreatedAt string `json:"created_at"`
		Size      int64  `json:"size"`
		Message   string `json:"message"`
	} `json:"snapshots"`
}

// TestCLIDriftAgainstBuiltState: a real Debian environment with packages, built with
// apt in the namespace sandbox. Right after the build (and after sessions that made
// their mount points) diff is empty and no downloaded .deb is left in the writable
// layer; changes made in the environment are what diff lists; commit -m records a
// snapshot with its time, size and message; restore by a prefix of its hash brings back
// exactly that state. With the README's packages, curl makes HTTPS requests.
func TestCLIDriftAgainstBuiltState(t *testing.T) {
	tarball := testrootfs.DebianTarball(t, "bookworm")
	w := newWorld(t)
	w.write("karapace.toml", "manifest_version = 1\n\n[base]\nimage = \""+tarball+"\"\n\n"+
		"[system]\npackages = [\"curl\", \"ca-certificates\"]\n\n[mounts]\nworkspace = \"./:/workspace\"\n\n"+
		"[runtime]\nbackend = \"namespace\"\n")
	id := w.buildNamed("karapace.toml", "drift")
	upper := filepath.Join(w.store, "env", id, "upper")
	noDrift := func(when string) {
		t.Helper()
		var d driftResult
		w.jsonOK(&d, "diff", "drift")
		if d.HasDrift || len(d.Added)+len(d.Modified)+len(d.Removed) > 0 {
			t.Fatalf("diff %s: %+v", when, d)
		}
	}
	noDrift("right after the build")
	if debs, _ := filepath.Glob(filepath.Join(upper, "var/cache/apt/archives/*.deb")); len(debs) > 0 {
		t.Errorf("downloaded packages left in the writable layer: %v", debs)
	}
	if !strings.Contains(w.ok("diff", "drift").stdout, "no drift") {
		t.Logf("diff's words for no drift: %s", w.ok("diff", "drift").stdout)
	}
	w.ok("exec", "drift", "--", "true")
	noDrift("after a session")

	// HTTPS with the README's packages: the CA bundle is there and curl verifies with it.
	bundle := filepath.Join(upper, "etc/ssl/certs/ca-certificates.crt")
	if fi, err := os.Stat(bundle); err != nil || fi.Size() == 0 {
		t.Fatalf("no CA bundle in the environment: %v", err)
	}
	const url = "https://deb.debian.org/debian/"
	if exec.Command("curl", "-sSfI", "--max-time", "15", url).Run() != nil {
		t.Log(url + " is not reachable from the host; HTTPS inside the environment not tried")
	} else if r := w.run("exec", "drift", "--", "curl", "-sSfI", "--max-time", "30", url); r.code != 0 {
		// A network that intercepts TLS with its own CA (trusted by the host, not by
		// Debian's bundle) fails the host's curl the same way with the environment's bundle.
		if exec.Command("curl", "-sSfI", "--max-time", "15", "--cacert", bundle, "--capath", t.TempDir(), url).Run() == nil {
			t.Fatalf("HTTPS fails in the environment but not on the host with its CA bundle: %s", r)
		}
		t.Logf("this network intercepts TLS; the environment's curl got as far as verifying: %s", r.stderr)
	}

	w.ok("exec", "drift", "--", "sh", "-c", "echo one > /root/added && echo x >> /etc/bash.bashrc && rm /etc/issue.net")
	want := driftResult{Added: []string{"root/added"}, Modified: []string{"etc/bash.bashrc"}, Removed: []string{"etc/issue.net"}, HasDrift: true}
	check := func(when string) {
		t.Helper()
		var d driftResult
		w.jsonOK(&d, "diff", "drift")
		if strings.Join(d.Added, ",") != strings.Join(want.Added, ",") || strings.Join(d.Modified, ",") != strings.Join(want.Modified, ",") ||
			strings.Join(d.Removed, ",") != strings.Join(want.Removed, ",") || !d.HasDrift {
			t.Fatalf("diff %s: %+v, want %+v", when, d, want)
		}
	}
	check("after changes")

	var c commitResult
	w.jsonOK(&c, "commit", "-m", "first try", "drift")
	var s snapshotsJSON
	w.jsonOK(&s, "snapshots", "drift")
	if len(s.Snapshots) != 1 || s.Snapshots[0].Key != c.SnapshotHash || s.Snapshots[0].Message != "first try" ||
		s.Snapshots[0].Size <= 0 || s.Snapshots[0].CreatedAt == "" {
		t.Fatalf("snapshots: %+v (committed %s)", s, c.SnapshotHash)
	}
	if out := w.ok("snapshots", "drift").stdout; !strings.Contains(out, "first try") || !strings.Contains(out, c.SnapshotHash) {
		t.Errorf("snapshots:\n%s", out)
	}

	w.ok("exec", "drift", "--", "sh", "-c", "echo two > /root/later && rm /root/added")
	w.ok("restore", "drift", c.SnapshotHash[:8])
	check("after restore by prefix")
	w.fail(3, []string{"no snapshot"}, "restore", "drift", "ffffffff")
	if strings.HasPrefix(c.SnapshotHash, "ffffffff") {
		t.Skip("the snapshot's hash starts with the prefix used as missing")
	}
	w.ok("destroy", "drift")
}
