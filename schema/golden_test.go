package schema

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGoldenFiles pins, for every testdata/<name>.toml, the canonical JSON, the lock
// file the mock backend's resolution gives, and both identities. Regenerate with
// `go test ./schema -run TestGoldenFiles -update` and review the diff: a change here
// means ids of existing environments change.
func TestGoldenFiles(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.toml"))
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".toml")
		t.Run(name, func(t *testing.T) {
			m, err := LoadManifest(in)
			if err != nil {
				t.Fatal(err)
			}
			n, err := m.Normalize()
			if err != nil {
				t.Fatal(err)
			}
			lock := NewLock(n, MockResolution(n))
			ids := "preliminary_id " + n.PreliminaryID().String() + "\nenv_id " + lock.EnvID.String() + "\n"
			checkGolden(t, name+".canonical.golden", n.CanonicalJSON())
			checkGolden(t, name+".lock.golden", lock.Marshal())
			checkGolden(t, name+".ids.golden", []byte(ids))

			// The golden lock reads back to the same lock and verifies.
			want, err := os.ReadFile(filepath.Join("testdata", name+".lock.golden"))
			if err != nil {
				t.Fatal(err)
			}
			back, err := ParseLock(want)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := back.VerifyIntegrity(); err != nil {
				t.Fatal(err)
			}
			if err := back.VerifyManifestIntent(n); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}
