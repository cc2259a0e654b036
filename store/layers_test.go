package store_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from golden:\n got: %s\nwant: %s", name, got, want)
	}
}

var emptyHash = schema.MustParseDigest("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")

func baseLayer() store.Layer {
	return store.Layer{Hash: emptyHash, Kind: store.KindBase, ObjectRefs: []schema.Digest{emptyHash}, ReadOnly: true, TarHash: emptyHash}
}

func TestLayerJSONGoldenAndHash(t *testing.T) {
	b, err := baseLayer().Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "layer-base.json", b)
	d, _ := baseLayer().Digest()
	if d.String() != "69556583baf4f02fc8e64452959dcefee8366067213fed79ebe6e16ad02bcd06" {
		t.Fatalf("base layer content hash %s", d)
	}
	snap := store.Layer{Hash: schema.SumString("snap"), Kind: store.KindSnapshot, Parent: d, ObjectRefs: nil, ReadOnly: true}
	b, err = snap.Encode()
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "layer-snapshot-legacy.json", b)
}

func TestLayerPutGetRoundTripAndIdempotent(t *testing.T) {
	ctx := context.Background()
	layers := store.NewLayers(newLayout(t))
	l := baseLayer()
	d1, err := layers.Put(ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	d2, _ := layers.Put(ctx, l)
	want, _ := l.Digest()
	if d1 != d2 || d1 != want {
		t.Fatalf("Put returned %s, %s; Digest %s", d1, d2, want)
	}
	got, err := layers.Get(ctx, d1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hash != l.Hash || got.Kind != l.Kind || !got.Parent.IsZero() || len(got.ObjectRefs) != 1 || got.TarHash != l.TarHash || !got.ReadOnly {
		t.Fatalf("round trip: %+v", got)
	}
	ds, err := layers.List(ctx)
	if err != nil || len(ds) != 1 || ds[0] != d1 {
		t.Fatalf("List = %v, %v", ds, err)
	}
	if err := layers.Remove(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if ok, _ := layers.Exists(ctx, d1); ok {
		t.Fatal("layer exists after Remove")
	}
	if err := layers.Remove(ctx, d1); err != nil {
		t.Fatal(err)
	}
	if _, err := layers.Get(ctx, d1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v", err)
	}
}

func TestLayerCorruptFileDetected(t *testing.T) {
	ctx := context.Background()
	layers := store.NewLayers(newLayout(t))
	d, _ := layers.Put(ctx, baseLayer())
	if err := os.WriteFile(layers.Path(d), []byte(`{"hash":"x"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := layers.Get(ctx, d); !errors.Is(err, store.ErrIntegrity) {
		t.Fatalf("Get(corrupt) = %v", err)
	}
}

func TestLayerDecodeRules(t *testing.T) {
	h := emptyHash.String()
	if l, err := store.DecodeLayer([]byte(`{"hash":"` + h + `","kind":"Base","object_refs":[],"read_only":true,"extra":1}`)); err != nil || !l.TarHash.IsZero() || !l.Parent.IsZero() {
		t.Fatalf("legacy layer without tar_hash and parent: %+v %v", l, err)
	}
	for name, doc := range map[string]string{
		"missing kind": `{"hash":"` + h + `","object_refs":[],"read_only":true}`,
		"bad kind":     `{"hash":"` + h + `","kind":"Weird","object_refs":[],"read_only":true}`,
		"missing refs": `{"hash":"` + h + `","kind":"Base","read_only":true}`,
		"non-hex hash": `{"hash":"../x","kind":"Base","object_refs":[],"read_only":true}`,
		"non-hex ref":  `{"hash":"` + h + `","kind":"Base","object_refs":["a/b"],"read_only":true}`,
		"array":        `[]`,
		"not json":     `nope`,
	} {
		if _, err := store.DecodeLayer([]byte(doc)); !errors.Is(err, store.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// TestLayerTarVerifiedOnRestore is the original's object round trip: pack, store,
// read back verified, unpack.
func TestLayerTarVerifiedOnRestore(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	objs := store.NewObjects(l)
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "f.txt"), "data", 0o644)
	var buf bytes.Buffer
	if err := store.Pack(ctx, src, &buf, nil); err != nil {
		t.Fatal(err)
	}
	d, err := objs.PutBytes(ctx, buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	r, err := objs.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dst := t.TempDir()
	if err := store.Unpack(ctx, r, dst, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "f.txt")); string(b) != "data" {
		t.Fatalf("restored %q", b)
	}
	// A truncated object (partial write) fails verification.
	if err := os.Truncate(objs.Path(d), 600); err != nil {
		t.Fatal(err)
	}
	if _, err := objs.Get(ctx, d); !errors.Is(err, store.ErrIntegrity) {
		t.Fatalf("truncated tar object: %v", err)
	}
}
