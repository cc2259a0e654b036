package schema

import (
	"os"
	"testing"
)

func BenchmarkParseNormalize(b *testing.B) {
	data, err := os.ReadFile("testdata/full.toml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for i := 0; i < b.N; i++ {
		m, err := ParseManifest(data)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Normalize(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPreliminaryID(b *testing.B) {
	m, _ := ParseManifest([]byte(sampleManifest))
	n, _ := m.Normalize()
	for i := 0; i < b.N; i++ {
		n.PreliminaryID()
	}
}

func BenchmarkLockRoundTrip(b *testing.B) {
	m, _ := ParseManifest([]byte(sampleManifest))
	n, _ := m.Normalize()
	lock := NewLock(n, MockResolution(n))
	for i := 0; i < b.N; i++ {
		l, err := ParseLock(lock.Marshal())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.VerifyIntegrity(); err != nil {
			b.Fatal(err)
		}
	}
}
