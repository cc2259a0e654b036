package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/karapace/karapace/schema"
)

// randomMeta is a record with every optional part present or not, and names or
// timestamps that need JSON escapes some of the time.
func randomMeta(rng *rand.Rand, i int) Metadata {
	id := schema.SumString(fmt.Sprint("env ", i))
	m := Metadata{
		EnvID: id, ShortID: id.Short(), State: []State{StateDefined, StateBuilt, StateRunning, StateFrozen, StateArchived}[rng.IntN(5)],
		CreatedAt: "2025-01-01T00:00:00.123456789+00:00", UpdatedAt: "2025-02-03T04:05:06+00:00",
		RefCount: []uint32{0, 1, 7, 10, 4294967295}[rng.IntN(5)],
	}
	if rng.IntN(4) > 0 {
		m.ManifestHash = schema.SumString(fmt.Sprint("manifest ", i))
	}
	if rng.IntN(4) > 0 {
		m.BaseLayer = schema.SumString(fmt.Sprint("base ", i))
	}
	for j := range rng.IntN(4) {
		m.DependencyLayers = append(m.DependencyLayers, schema.SumString(fmt.Sprint("dep ", i, j)))
	}
	if rng.IntN(3) == 0 {
		m.PolicyLayer = schema.SumString(fmt.Sprint("policy ", i))
	}
	switch rng.IntN(6) {
	case 0:
	case 1:
		m.Name = "naïve" // not ASCII: the general path
	case 2:
		m.CreatedAt = "tab\there \"quoted\" <&>" // escapes: the general path
	default:
		m.Name = fmt.Sprintf("env-%d_x", i)
	}
	return m
}

// general is the path DecodeMetadata takes when the fast one declines.
func general(b []byte) (Metadata, error) { return decodeMetadata(b, true) }

// sameResult fails unless the fast-or-general decode and the general decode agree: both
// fail with the same message, or both give the same record.
func sameResult(t *testing.T, b []byte) {
	t.Helper()
	got, gotErr := DecodeMetadata(b)
	want, wantErr := general(b)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("DecodeMetadata err %v, general path err %v\n%s", gotErr, wantErr, b)
	}
	if gotErr != nil {
		if gotErr.Error() != wantErr.Error() {
			t.Fatalf("error %q, general path %q", gotErr, wantErr)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeMetadata = %+v\ngeneral path = %+v\n%s", got, want, b)
	}
}

// Every record Encode writes with plain ASCII strings takes the fast path, and gives
// what the general path gives.
func TestScanMetadataTakesEncodedRecords(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	fast := 0
	for i := range 200 {
		m := randomMeta(rng, i)
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		plain := m.Name != "naïve" && m.CreatedAt == "2025-01-01T00:00:00.123456789+00:00"
		got, ok := scanMetadata(b, nil)
		if ok != plain {
			t.Fatalf("scanMetadata ok = %v for\n%s", ok, b)
		}
		if ok {
			fast++
			want, err := general(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("fast %+v\ngeneral %+v", got, want)
			}
		}
		sameResult(t, b)
	}
	if fast < 100 {
		t.Fatalf("only %d of 200 records took the fast path", fast)
	}
}

// Any change to any byte of a record is judged exactly as the general path judges it:
// a checksum mismatch, a parse error, or (for a change the JSON does not see, such as
// other whitespace) the same record.
func TestScanMetadataEveryByteTampered(t *testing.T) {
	full := Metadata{
		EnvID: schema.SumString("full"), ShortID: "full", Name: "dev", State: StateBuilt,
		ManifestHash: schema.SumString("m"), BaseLayer: schema.SumString("b"),
		DependencyLayers: []schema.Digest{schema.SumString("a"), schema.SumString("b")},
		PolicyLayer:      schema.SumString("p"), CreatedAt: "c", UpdatedAt: "u", RefCount: 12,
	}
	bare := Metadata{EnvID: schema.SumString("bare"), ShortID: "bare", State: StateDefined, CreatedAt: "c", UpdatedAt: "u"}
	for _, m := range []Metadata{full, bare} {
		b, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		for pos := range b {
			for _, c := range []byte{' ', 'g', b[pos] ^ 1} {
				if c == b[pos] {
					continue
				}
				mut := bytes.Clone(b)
				mut[pos] = c
				sameResult(t, mut)
			}
			sameResult(t, append(bytes.Clone(b[:pos]), b[pos+1:]...))
		}
		sameResult(t, append(bytes.Clone(b), '\n'))
		sameResult(t, append(bytes.Clone(b), ' ', 'x'))
	}
}

func TestScanMetadataRejectsWhatTheGeneralPathJudges(t *testing.T) {
	m := Metadata{EnvID: schema.SumString("x"), ShortID: "short", State: StateBuilt, CreatedAt: "c", UpdatedAt: "u", RefCount: 1}
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	for name, rec := range map[string][]byte{
		"legacy without checksum": bytes.Replace(b, []byte(",\n  \"checksum\": \""+mustChecksum(t, m)+"\""), nil, 1),
		"null checksum":           bytes.Replace(b, []byte("\""+mustChecksum(t, m)+"\""), []byte("null"), 1),
		"lowercase state":         bytes.Replace(b, []byte(`"Built"`), []byte(`"built"`), 1),
		"leading zero":            bytes.Replace(b, []byte(`"ref_count": 1`), []byte(`"ref_count": 01`), 1),
		"ref_count overflow":      bytes.Replace(b, []byte(`"ref_count": 1`), []byte(`"ref_count": 4294967296`), 1),
		"uppercase hex":           bytes.Replace(b, []byte(m.EnvID.String()), []byte(fmt.Sprintf("%X", m.EnvID[:])), 1),
		"empty policy":            bytes.Replace(b, []byte(`"policy_layer": null`), []byte(`"policy_layer": ""`), 1),
		"unknown key":             bytes.Replace(b, []byte(`"state"`), []byte(`"extra": 1,`+"\n  "+`"state"`), 1),
		"empty":                   nil,
		"not an object":           []byte("[]"),
	} {
		if _, ok := scanMetadata(rec, nil); ok {
			t.Errorf("%s: taken by the fast path:\n%s", name, rec)
		}
		sameResult(t, rec)
	}
	// A tampered field is an integrity error from either path.
	bad := bytes.Replace(b, []byte(`"ref_count": 1`), []byte(`"ref_count": 2`), 1)
	var ie *IntegrityError
	if _, err := DecodeMetadata(bad); !errors.As(err, &ie) {
		t.Fatalf("tampered record: %v", err)
	}
}

func mustChecksum(t *testing.T, m Metadata) string {
	t.Helper()
	sum, err := m.ComputeChecksum()
	if err != nil {
		t.Fatal(err)
	}
	return sum.String()
}

func TestHexDigestMatchesParseDigest(t *testing.T) {
	valid := schema.SumString("x").String()
	cases := []string{valid, valid[:63], valid + "0", "", fmt.Sprintf("%X", schema.SumString("x"))}
	for c := range 256 {
		cases = append(cases, valid[:10]+string([]byte{byte(c)})+valid[11:], valid[:63]+string([]byte{byte(c)}))
	}
	for _, s := range cases {
		d, ok := hexDigest(s)
		want, err := schema.ParseDigest(s)
		if ok != (err == nil) || (ok && d != want) {
			t.Errorf("hexDigest(%q) = %v, %v; ParseDigest: %v, %v", s, d, ok, want, err)
		}
	}
}

// FuzzDecodeMetadata: the fast path never accepts what the general path rejects, and
// never decodes differently.
func FuzzDecodeMetadata(f *testing.F) {
	rng := rand.New(rand.NewPCG(5, 6))
	for i := range 8 {
		b, err := randomMeta(rng, i).Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"env_id": "x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, ok := scanMetadata(b, nil); ok {
			want, err := general(b)
			if err != nil {
				t.Fatalf("fast path accepted what the general path rejects (%v):\n%s", err, b)
			}
			if !reflect.DeepEqual(m, want) {
				t.Fatalf("fast %+v\ngeneral %+v", m, want)
			}
		}
	})
}

// A record removed while a listing runs is left out quietly; a corrupt one is warned of.
func TestEachSkipWarnsOnlyOfCorruption(t *testing.T) {
	var logs bytes.Buffer
	s := &Envs{log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	s.skip("gone", &NotFoundError{What: "environment", Key: "gone"})
	if logs.Len() != 0 {
		t.Fatalf("warned of a removed record: %s", logs.String())
	}
	s.skip("bad", fmt.Errorf("%w: not json", ErrCorrupt))
	if !bytes.Contains(logs.Bytes(), []byte("skipping corrupted metadata entry 'bad'")) {
		t.Fatalf("no warning for a corrupt record: %q", logs.String())
	}
}
