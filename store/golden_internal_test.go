package store

import (
	"testing"
)

// The original's unit-test sample (spec 2.7), whose ids are not hex: checked at the
// JSON level, where any string is allowed.
func TestMetadataChecksumVector(t *testing.T) {
	name := (*string)(nil)
	w := metadataJSON{
		EnvID: "abc123def456", ShortID: "abc123def456", Name: name, State: StateDefined,
		ManifestHash: "mhash", BaseLayer: "base1", DependencyLayers: []string{"dep1"},
		CreatedAt: "2025-01-01T00:00:00Z", UpdatedAt: "2025-01-01T00:00:00Z", RefCount: 1,
	}
	sum, err := checksumOf(w)
	if err != nil {
		t.Fatal(err)
	}
	if sum.String() != "1aa97384399e11440fb558c5ff416545cf8c9faf106e611bf4ad3fbc8ac6d46e" {
		t.Fatalf("checksum %s", sum)
	}
}
