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

func TestLinkRenderingLikeRustPathComponents(t *testing.T) {
	for in, want := range map[string]string{
		"/usr//bin/./x/": "/usr/bin/x/",
		"./a":            "./a",
		"a/.":            "a",
		"a/./b":          "a/b",
		"../x":           "../x",
		"/":              "//", // the original's quirk: root, then the trailing slash
		"hello.txt":      "hello.txt",
	} {
		field := make([]byte, nameLen)
		if !renderPath(field, in, true) {
			t.Fatalf("%q did not fit", in)
		}
		got := string(field[:len(want)])
		if got != want || (len(want) < nameLen && field[len(want)] != 0) {
			t.Errorf("render(%q) = %q, want %q", in, field, want)
		}
	}
}

func TestSizeFieldBase256(t *testing.T) {
	f := make([]byte, 12)
	sizeField(f, 1<<33-1)
	if string(f) != "77777777777\x00" {
		t.Fatalf("largest octal size %q", f)
	}
	sizeField(f, 1<<33)
	want := []byte{0x80, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0}
	if string(f) != string(want) {
		t.Fatalf("base-256 size % x", f)
	}
}
