package schema

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F, pattern string) {
	files, _ := filepath.Glob(filepath.Join("testdata", pattern))
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
}

// FuzzManifest: parsing never panics, and for every manifest that normalizes,
// canonical JSON -> decode -> canonical JSON is stable, the preliminary id survives the
// round trip, and the mock lock marshals, parses back equal, verifies and matches the
// manifest's intent.
func FuzzManifest(f *testing.F) {
	addSeeds(f, "*.toml")
	for _, p := range Presets() {
		f.Add([]byte(p.Manifest))
	}
	for _, tpl := range Templates() {
		f.Add([]byte(tpl.Manifest))
	}
	f.Add([]byte("manifest_version = 1\n[base]\nimage = \"\\u2028<\\u0001>\"\n[mounts]\n\"\" = \"a:b\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			return
		}
		// What Marshal writes parses back to the same manifest.
		again, err := ParseManifest(m.Marshal())
		if err != nil {
			t.Fatalf("marshalled manifest does not parse: %v\n%s", err, m.Marshal())
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("manifest round trip:\n%+v\n%+v", again, m)
		}
		n, err := m.Normalize()
		if err != nil {
			return
		}
		canon := n.CanonicalJSON()
		back, err := DecodeNormalized(canon)
		if err != nil {
			t.Fatalf("canonical JSON does not decode: %v\n%s", err, canon)
		}
		if !bytes.Equal(back.CanonicalJSON(), canon) {
			t.Fatalf("canonical JSON unstable:\n%s\n%s", canon, back.CanonicalJSON())
		}
		if back.PreliminaryID() != n.PreliminaryID() {
			t.Fatal("preliminary id changed through JSON")
		}
		lock := NewLock(n, MockResolution(n))
		text := lock.Marshal()
		parsed, err := ParseLock(text)
		if err != nil {
			t.Fatalf("lock does not parse: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(parsed, lock) {
			t.Fatalf("lock round trip:\n%+v\n%+v", parsed, lock)
		}
		if _, err := parsed.VerifyIntegrity(); err != nil {
			t.Fatal(err)
		}
		if err := parsed.VerifyManifestIntent(back); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzLock: parsing never panics; a lock that parses marshals to text that parses back
// to the same lock and marshals to the same bytes.
func FuzzLock(f *testing.F) {
	addSeeds(f, "*.lock.golden")
	f.Add([]byte("lock_version = 2\n"))
	f.Add([]byte("lock_version = 2\nenv_id = \"x\"\n[[resolved_packages]]\nname = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock(data)
		if err != nil {
			return
		}
		text := l.Marshal()
		back, err := ParseLock(text)
		if err != nil {
			t.Fatalf("marshalled lock does not parse: %v\n%s", err, text)
		}
		if !reflect.DeepEqual(back, l) {
			t.Fatalf("round trip:\n%+v\n%+v", back, l)
		}
		if !bytes.Equal(back.Marshal(), text) {
			t.Fatal("marshal unstable")
		}
		_, _ = l.VerifyIntegrity()
	})
}
