package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
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

// hashVectors are BLAKE3-256 digests of the bytes i%251 for i < n, the input pattern of
// the BLAKE3 reference test vectors, computed with b3sum 1.3 (an independent
// implementation) on 2026-11-28.
var hashVectors = []struct {
	n    int
	want string
}{
	{0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"},
	{1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"},
	{63, "e9bc37a594daad83be9470df7f7b3798297c3d834ce80ba85d6e207627b7db7b"},
	{64, "4eed7141ea4a5cd4b788606bd23f46e212af9cacebacdc7d1f4c6dc7f2511b98"},
	{65, "de1e5fa0be70df6d2be8fffd0e99ceaa8eb6e8c93a63f2d8d1c30ecb6b263dee"},
	{1023, "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"},
	{1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"},
	{1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"},
	{2048, "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"},
	{2049, "5f4d72f40d7a5f82b15ca2b2e44b1de3c2ef86c426c95c1af0b6879522563030"},
	{3072, "b98cb0ff3623be03326b373de6b9095218513e64f1ee2edd2525c7ad1e5cffd2"},
	{3073, "7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3"},
	{4096, "015094013f57a5277b59d8475c0501042c0b642e531b0a1c8f58d2163229e969"},
	{4097, "9b4052b38f1c5fc8b1f9ff7ac7b27cd242487b3d890d15c96a1c25b8aa0fb995"},
	{5120, "9cadc15fed8b5d854562b26a9536d9707cadeda9b143978f319ab34230535833"},
	{5121, "628bd2cb2004694adaab7bbd778a25df25c47b9d4155a55f8fbd79f2fe154cff"},
	{6144, "3e2e5b74e048f3add6d21faab3f83aa44d3b2278afb83b80b3c35164ebeca205"},
	{6145, "f1323a8631446cc50536a9f705ee5cb619424d46887f3c376c695b70e0f0507f"},
	{7168, "61da957ec2499a95d6b8023e2b0e604ec7f6b50e80a9678b89d2628e99ada77a"},
	{7169, "a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817"},
	{8192, "aae792484c8efe4f19e2ca7d371d8c467ffb10748d8a5a1ae579948f718a2a63"},
	{8193, "bab6c09cb8ce8cf459261398d2e7aef35700bf488116ceb94a36d0f5f1b7bc3b"},
	{16384, "f875d6646de28985646f34ee13be9a576fd515f76b5b0a26bb324735041ddde4"},
	{31744, "62b6960e1a44bcc1eb1a611a8d6235b6b4b78f32e7abc4fb4c6cdcce94895c47"},
	{102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"},
	{1048576, "74cb441fd087764ca9c3694da742ebe30cbeb3060a17009ca81825c7a8d10343"},
	{1048577, "2f053cd7472cf0cd2f9adaf45c1180255b91b9a865404a63671a0ee5f792ed33"},
	{3145745, "26003c63117013de5d02be76e5e32a2f75bfbc075f17180fd5f9f0b4752d2bfe"},
}

func vectorInput(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// TestHashVectors checks Sum, Hash (whole and in uneven pieces), HashReader and the
// lukechampine Hasher against digests from b3sum.
func TestHashVectors(t *testing.T) {
	for _, v := range hashVectors {
		in := vectorInput(v.n)
		want := MustParseDigest(v.want)
		if got := Sum(in); got != want {
			t.Errorf("Sum(%d bytes) = %s, want %s", v.n, got, want)
		}
		h := NewHash()
		h.Write(in)
		if got := h.Digest(); got != want {
			t.Errorf("Hash(%d bytes) = %s, want %s", v.n, got, want)
		}
		// Uneven pieces cross chunk (1 KiB) and SIMD-batch boundaries at odd offsets.
		h.Reset()
		for rest, step := in, 1; len(rest) > 0; step = step*3 + 1 {
			k := min(step, len(rest))
			h.Write(rest[:k])
			rest = rest[k:]
		}
		if got := h.Digest(); got != want {
			t.Errorf("Hash(%d bytes in pieces) = %s, want %s", v.n, got, want)
		}
		if got, n, err := HashReader(bytes.NewReader(in)); err != nil || n != int64(v.n) || got != want {
			t.Errorf("HashReader(%d bytes) = %s %d %v, want %s", v.n, got, n, err, want)
		}
		lh := Hasher()
		lh.Write(in)
		if got := DigestOf(lh); got != want {
			t.Errorf("Hasher(%d bytes) = %s, want %s", v.n, got, want)
		}
	}
}

// TestHashAgrees feeds random content in random pieces to Hash and to the lukechampine
// Hasher: the two must always agree, and Digest must not disturb later writes.
func TestHashAgrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 5<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}
	for round := range 40 {
		n := rng.IntN(len(buf))
		if round < 10 {
			n = rng.IntN(20 << 10)
		}
		h, lh := NewHash(), Hasher()
		for off := 0; off < n; {
			k := min(n-off, 1+rng.IntN(3<<20))
			if rng.IntN(4) == 0 {
				k = min(n-off, 1+rng.IntN(2000))
			}
			h.Write(buf[off : off+k])
			lh.Write(buf[off : off+k])
			off += k
			if got, want := h.Digest(), DigestOf(lh); got != want {
				t.Fatalf("round %d after %d of %d bytes: Hash %s, lukechampine %s", round, off, n, got, want)
			}
		}
		if got, want := h.Digest(), DigestOf(lh); got != want {
			t.Fatalf("round %d (%d bytes): Hash %s, lukechampine %s", round, n, got, want)
		}
	}
}
