package schema

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseDigest(t *testing.T) {
	good := "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	d, err := ParseDigest(good)
	if err != nil {
		t.Fatal(err)
	}
	if d != Sum(nil) {
		t.Fatalf("blake3(\"\") = %s, want %s", Sum(nil), good)
	}
	if d.String() != good || d.Short() != good[:12] {
		t.Fatalf("String/Short = %s/%s", d.String(), d.Short())
	}
	for _, bad := range []string{"", "../x", "/etc", strings.ToUpper(good), good[:63], good + "0", strings.Repeat("g", 64), good[:62] + "\x00a"} {
		if _, err := ParseDigest(bad); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ParseDigest(%q) err = %v, want ErrInvalidDigest", bad, err)
		}
	}
}

func TestDigestJSON(t *testing.T) {
	d := SumString("rolling")
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `"4292064f6e4d44bb7aff34c7ceb3600172cf1fa28e64bdb59b3dc79ef2a41e74"` {
		t.Fatalf("json = %s", b)
	}
	var back Digest
	if err := json.Unmarshal(b, &back); err != nil || back != d {
		t.Fatalf("round trip: %v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`"../../etc/passwd"`), &back); err == nil {
		t.Fatal("hostile id accepted")
	}
}

func TestHashReader(t *testing.T) {
	in := strings.Repeat("karapace", 1<<18)
	d, n, err := HashReader(strings.NewReader(in))
	if err != nil || n != int64(len(in)) || d != SumString(in) {
		t.Fatalf("HashReader = %s %d %v", d, n, err)
	}
}

func TestShortID(t *testing.T) {
	if _, err := ParseShortID("abcdef012345"); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"abc", "ABCDEF012345", "../../../../", "abcdef0123456"} {
		if _, err := ParseShortID(bad); err == nil {
			t.Errorf("ParseShortID(%q) accepted", bad)
		}
	}
	if !IsHexPrefix("ab12") || IsHexPrefix("") || IsHexPrefix("ab/") {
		t.Fatal("IsHexPrefix")
	}
}
