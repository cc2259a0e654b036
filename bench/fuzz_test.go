package bench

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// The store's metadata and layer JSON are read from disk and from remotes: hostile
// input. These targets (run by scripts/fuzz.sh; their seeds by `go test`) require that
// decoding never panics and that decode -> encode -> decode is stable, byte for byte.

func sampleMetadata() store.Metadata {
	id := schema.SumString("fuzz env")
	return store.Metadata{
		EnvID: id, ShortID: id.Short(), Name: "demo", State: store.StateBuilt,
		ManifestHash: schema.SumString("manifest"), BaseLayer: schema.SumString("base"),
		DependencyLayers: []schema.Digest{schema.SumString("dep")}, PolicyLayer: schema.SumString("policy"),
		CreatedAt: "2026-01-02T03:04:05.123456789Z", UpdatedAt: "2026-01-02T03:04:05.123456789Z", RefCount: 1,
	}
}

func FuzzMetadata(f *testing.F) {
	good, err := sampleMetadata().Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(`"ref_count": 1`), []byte(`"ref_count": 2`), 1)) // checksum mismatch
	f.Add([]byte(`{"env_id":"` + schema.SumString("x").String() + `","short_id":"x","name":null,"state":"Defined","manifest_hash":"","base_layer":"","dependency_layers":[],"policy_layer":null,"created_at":"","updated_at":"","ref_count":0}`))
	f.Add([]byte(`{"env_id":"../../etc","short_id":"","state":"Built","manifest_hash":"","base_layer":"","dependency_layers":null,"created_at":"","updated_at":"","ref_count":4294967296}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := store.DecodeMetadata(b)
		if err != nil {
			return
		}
		enc, err := m.Encode()
		if err != nil {
			return
		}
		m2, err := store.DecodeMetadata(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v\n%s", err, enc)
		}
		m.Checksum, m2.Checksum = schema.Digest{}, schema.Digest{}
		if len(m.DependencyLayers) == 0 && len(m2.DependencyLayers) == 0 {
			m.DependencyLayers, m2.DependencyLayers = nil, nil
		}
		if !reflect.DeepEqual(m, m2) {
			t.Fatalf("decode -> encode -> decode changed the record:\n%+v\n%+v", m, m2)
		}
		enc2, err := m2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
	})
}

func FuzzLayer(f *testing.F) {
	l := store.Layer{Hash: schema.SumString("tar"), Kind: store.KindBase, ObjectRefs: []schema.Digest{schema.SumString("o")}, ReadOnly: true, TarHash: schema.SumString("tar")}
	good, err := l.Encode()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	snap := store.Layer{Hash: schema.SumString("snap"), Kind: store.KindSnapshot, Parent: schema.SumString("tar"), ObjectRefs: []schema.Digest{}}
	if good, err = snap.Encode(); err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"hash":"","kind":"Base","parent":null,"object_refs":[],"read_only":true,"tar_hash":""}`))
	f.Add([]byte(`{"hash":"` + schema.SumString("x").String() + `","kind":"Nope","object_refs":["../x"],"read_only":false}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := store.DecodeLayer(b)
		if err != nil {
			return
		}
		enc, err := l.Encode()
		if err != nil {
			t.Fatalf("a decoded layer does not encode: %v", err)
		}
		l2, err := store.DecodeLayer(enc)
		if err != nil {
			t.Fatalf("re-decoding our own encoding: %v\n%s", err, enc)
		}
		if len(l.ObjectRefs) == 0 && len(l2.ObjectRefs) == 0 {
			l.ObjectRefs, l2.ObjectRefs = nil, nil
		}
		if !reflect.DeepEqual(l, l2) {
			t.Fatalf("decode -> encode -> decode changed the layer:\n%+v\n%+v", l, l2)
		}
		enc2, err := l2.Encode()
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding is not stable (%v):\n%s\n%s", err, enc, enc2)
		}
		if d1, err := l.Digest(); err == nil {
			if d2, err := l2.Digest(); err != nil || d1 != d2 {
				t.Fatalf("the layer's content hash changed: %v %v", d1, d2)
			}
		}
	})
}
