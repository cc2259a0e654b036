package sandbox

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseSubIDs(t *testing.T) {
	const file = `# comment
alice:100000:65536
bob:200000:65536
1000:300000:1000
alice:bad:1
alice:400000:0
carol:4294967295:2

alice:500000:10
`
	got, err := ParseSubIDs(strings.NewReader(file), "alice", 1000)
	if err != nil {
		t.Fatal(err)
	}
	want := []SubRange{{100000, 65536}, {300000, 1000}, {500000, 10}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if got, _ := ParseSubIDs(strings.NewReader(file), "carol", 7); len(got) != 0 {
		t.Fatalf("overflowing range accepted: %v", got)
	}
}

func TestIDMaps(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sub := write("subuid", "alice:100000:65536\n")
	subg := write("subgid", "alice:200000:65536\n")
	empty := write("empty", "")
	self := write("self", "alice:900:200\nalice:100000:65536\n")
	found := func(name string) (string, error) { return "/usr/bin/" + name, nil }
	notFound := func(name string) (string, error) { return "", errors.New("not found") }

	tests := []struct {
		name     string
		src      IDSource
		full     bool
		helper   bool
		reason   string
		uidRange IDMap
	}{
		{"full", IDSource{User: "alice", UID: 1000, GID: 1000, SubUID: sub, SubGID: subg, LookPath: found}, true, true, "full id mapping", IDMap{1, 100000, 65536}},
		{"no helpers", IDSource{User: "alice", UID: 1000, GID: 1000, SubUID: sub, SubGID: subg, LookPath: notFound}, false, false, "newuidmap/newgidmap are not installed", IDMap{}},
		{"root needs no helper", IDSource{User: "alice", UID: 0, GID: 0, SubUID: sub, SubGID: subg, LookPath: notFound}, true, false, "full id mapping", IDMap{1, 100000, 65536}},
		{"no subuid entry", IDSource{User: "bob", UID: 1001, GID: 1001, SubUID: sub, SubGID: subg, LookPath: found}, false, false, "single id mapping: package installs that chown will fail: no range for bob (uid 1001) in " + sub + " and " + subg, IDMap{}},
		{"no subgid entry", IDSource{User: "alice", UID: 1000, GID: 1000, SubUID: sub, SubGID: empty, LookPath: found}, false, false, "no range for alice (uid 1000) in " + empty, IDMap{}},
		{"missing files", IDSource{User: "alice", UID: 1000, GID: 1000, SubUID: filepath.Join(dir, "nope"), SubGID: filepath.Join(dir, "nope2"), LookPath: found}, false, false, "single id mapping", IDMap{}},
		{"range holding own id skipped", IDSource{User: "alice", UID: 1000, GID: 1000, SubUID: self, SubGID: self, LookPath: found}, true, true, "full", IDMap{1, 100000, 65536}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := IDMaps(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if m.Full != tc.full || (m.NewUIDMap != "") != tc.helper || !strings.Contains(m.Reason, tc.reason) {
				t.Fatalf("got %+v", m)
			}
			if m.UID[0] != (IDMap{0, tc.src.UID, 1}) || m.GID[0] != (IDMap{0, tc.src.GID, 1}) {
				t.Fatalf("first line %+v %+v", m.UID[0], m.GID[0])
			}
			if tc.full {
				if len(m.UID) != 2 || m.UID[1] != tc.uidRange {
					t.Fatalf("uid map %+v", m.UID)
				}
			} else if len(m.UID) != 1 || len(m.GID) != 1 {
				t.Fatalf("single mapping expected: %+v", m)
			}
		})
	}
}

// The real files of this host parse, and the verdict agrees with them.
func TestIDMapsOnHost(t *testing.T) {
	h := HostFromOS()
	m, err := IDMaps(IDSource{User: h.User, UID: h.UID, GID: h.GID})
	if err != nil {
		t.Fatal(err)
	}
	if m.Reason == "" || len(m.UID) == 0 || m.UID[0].HostID != h.UID {
		t.Fatalf("host mapping %+v", m)
	}
	t.Logf("host id mapping for %s: %s", h.User, m.Reason)
}

// TestSingleMappingFix: without a range, the fix names one that no user's line in either
// file overlaps.
func TestSingleMappingFix(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "subuid")
	subg := filepath.Join(dir, "subgid")
	if err := os.WriteFile(sub, []byte("alice:100000:65536\ncarol:165536:1000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(subg, []byte("alice:100000:65536\ndave:231072:65536\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := IDMaps(IDSource{User: "bob", UID: 1001, GID: 1001, SubUID: sub, SubGID: subg})
	if err != nil {
		t.Fatal(err)
	}
	if m.Full || !strings.Contains(m.Fix, "usermod --add-subuids 296608-362143 --add-subgids 296608-362143 bob") {
		t.Errorf("fix: %q", m.Fix)
	}
	if got := freeSubRange(filepath.Join(dir, "none")); got != 100000 {
		t.Errorf("free range with no files: %d", got)
	}
}
