package storetest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// TestObjectStore runs the conformance suite against stores made by newStore, which
// must return an empty store for each call.
func TestObjectStore(t *testing.T, newStore func(t *testing.T) store.ObjectStore) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.ObjectStore)
	}{
		{"PutOpenRoundTrip", testRoundTrip},
		{"PutIsIdempotent", testIdempotent},
		{"OpenMissingIsNotFound", testOpenMissing},
		{"EmptyObject", testEmpty},
		{"LargeObjectStreams", testLarge},
		{"ExistsAndRemove", testExistsRemove},
		{"ListIsSorted", testList},
		{"CancelledPutStoresNothing", testCancelledPut},
		{"FailingReaderStoresNothing", testFailingReader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func readObject(t *testing.T, s store.ObjectStore, d schema.Digest) []byte {
	t.Helper()
	r, err := s.Open(context.Background(), d)
	if err != nil {
		t.Fatalf("Open(%s): %v", d.Short(), err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", d.Short(), err)
	}
	return b
}

func put(t *testing.T, s store.ObjectStore, b []byte) schema.Digest {
	t.Helper()
	d, err := s.Put(context.Background(), bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return d
}

func testRoundTrip(t *testing.T, s store.ObjectStore) {
	data := []byte("hello karapace")
	d := put(t, s, data)
	if d != schema.Sum(data) {
		t.Fatalf("digest %s, want blake3 %s", d, schema.Sum(data))
	}
	if got := readObject(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("read %q, want %q", got, data)
	}
}

func testIdempotent(t *testing.T, s store.ObjectStore) {
	d1 := put(t, s, []byte("same"))
	d2 := put(t, s, []byte("same"))
	if d1 != d2 {
		t.Fatalf("digests differ: %s %s", d1, d2)
	}
	ds, err := s.List(context.Background())
	if err != nil || len(ds) != 1 {
		t.Fatalf("List = %v, %v; want one object", ds, err)
	}
}

func testOpenMissing(t *testing.T, s store.ObjectStore) {
	_, err := s.Open(context.Background(), schema.SumString("absent"))
	if !errors.Is(err, store.ErrNotFound) || !errors.Is(err, store.ErrStore) {
		t.Fatalf("Open(missing) = %v, want ErrNotFound in the ErrStore class", err)
	}
}

func testEmpty(t *testing.T, s store.ObjectStore) {
	d := put(t, s, nil)
	if d.String() != "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262" {
		t.Fatalf("empty digest %s", d)
	}
	if got := readObject(t, s, d); len(got) != 0 {
		t.Fatalf("empty object read %d bytes", len(got))
	}
}

func testLarge(t *testing.T, s store.ObjectStore) {
	data := make([]byte, 3<<20+12345)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	d := put(t, s, data)
	if d != schema.Sum(data) {
		t.Fatalf("digest mismatch for large object")
	}
	if got := readObject(t, s, d); !bytes.Equal(got, data) {
		t.Fatalf("large object differs after round trip")
	}
}

func testExistsRemove(t *testing.T, s store.ObjectStore) {
	ctx := context.Background()
	d := put(t, s, []byte("x"))
	if ok, err := s.Exists(ctx, d); err != nil || !ok {
		t.Fatalf("Exists = %v, %v", ok, err)
	}
	if ok, err := s.Exists(ctx, schema.SumString("y")); err != nil || ok {
		t.Fatalf("Exists(missing) = %v, %v", ok, err)
	}
	if err := s.Remove(ctx, d); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Exists(ctx, d); ok {
		t.Fatal("object still exists after Remove")
	}
	if err := s.Remove(ctx, d); err != nil {
		t.Fatalf("Remove(missing) = %v, want nil", err)
	}
}

func testList(t *testing.T, s store.ObjectStore) {
	ctx := context.Background()
	if ds, err := s.List(ctx); err != nil || len(ds) != 0 {
		t.Fatalf("List(empty) = %v, %v", ds, err)
	}
	var want []schema.Digest
	for _, v := range []string{"c", "a", "b", "d"} {
		want = append(want, put(t, s, []byte(v)))
	}
	ds, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != len(want) {
		t.Fatalf("List returned %d digests, want %d", len(ds), len(want))
	}
	for i := 1; i < len(ds); i++ {
		if bytes.Compare(ds[i-1][:], ds[i][:]) >= 0 {
			t.Fatalf("List not sorted: %v", ds)
		}
	}
	seen := map[schema.Digest]bool{}
	for _, d := range ds {
		seen[d] = true
	}
	for _, d := range want {
		if !seen[d] {
			t.Fatalf("List misses %s", d)
		}
	}
}

func testCancelledPut(t *testing.T, s store.ObjectStore) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, bytes.NewReader([]byte("never"))); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with cancelled context = %v, want context.Canceled", err)
	}
	if ds, _ := s.List(context.Background()); len(ds) != 0 {
		t.Fatalf("cancelled Put left %d objects", len(ds))
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.n)
	f.n -= n
	return n, nil
}

func testFailingReader(t *testing.T, s store.ObjectStore) {
	if _, err := s.Put(context.Background(), &failingReader{n: 100000}); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	if ds, _ := s.List(context.Background()); len(ds) != 0 {
		t.Fatalf("failed Put left %d objects", len(ds))
	}
}
