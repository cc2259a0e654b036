package schema

import (
	"errors"
	"strings"
	"testing"
)

// TestManifestEnv: [env] parses, normalizes into the stored manifest (and only there:
// without it the canonical JSON is the original's), round-trips through Marshal, and
// refuses names that are no variables.
func TestManifestEnv(t *testing.T) {
	base := "manifest_version = 1\n[base]\nimage = \"rolling\"\n"
	plain, err := ParseManifest([]byte(base))
	if err != nil {
		t.Fatal(err)
	}
	pn, err := plain.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(pn.CanonicalJSON()), "env") || strings.Contains(string(plain.Marshal()), "[env]") {
		t.Errorf("a manifest without [env] mentions it: %s", pn.CanonicalJSON())
	}
	m, err := ParseManifest([]byte(base + "[env]\nGOFLAGS = \"-mod=mod\"\nA_1 = \"x y\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := m.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	if got := string(n.CanonicalJSON()); !strings.HasSuffix(got, `"env":{"A_1":"x y","GOFLAGS":"-mod=mod"}}`) {
		t.Errorf("canonical JSON: %s", got)
	}
	back, err := DecodeNormalized(n.CanonicalJSON())
	if err != nil || back.Env["GOFLAGS"] != "-mod=mod" {
		t.Errorf("decoded: %+v %v", back, err)
	}
	again, err := ParseManifest(m.Marshal())
	if err != nil || again.Env["A_1"] != "x y" || len(again.Env) != 2 {
		t.Errorf("Marshal round trip: %+v %v\n%s", again, err, m.Marshal())
	}
	// Runtime configuration: the lock and the environment's id do not hold it.
	if NewLock(n, Resolution{}).EnvID != NewLock(pn, Resolution{}).EnvID {
		t.Error("[env] changed the environment id")
	}
	for _, bad := range []string{"\"1X\" = \"v\"", "\"A-B\" = \"v\"", "\"\" = \"v\""} {
		m, err := ParseManifest([]byte(base + "[env]\n" + bad + "\n"))
		if err == nil {
			_, err = m.Normalize()
		}
		if !errors.Is(err, ErrInvalidEnv) {
			t.Errorf("[env] %s: %v", bad, err)
		}
	}
}
