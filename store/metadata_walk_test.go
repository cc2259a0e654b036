package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// synthEnvs writes n verified metadata records straight into a temp store (no fsync,
// no name scan) and returns its Envs.
func synthEnvs(tb testing.TB, n int) (*store.Envs, store.Layout) {
	tb.Helper()
	l := store.NewLayout(tb.TempDir())
	if err := os.MkdirAll(l.MetadataDir(), 0o755); err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(i))
		id := schema.Sum(b[:])
		m := store.Metadata{
			EnvID: id, ShortID: id.Short(), Name: fmt.Sprintf("env-%d", i), State: store.StateBuilt,
			ManifestHash: schema.Sum(append(b[:], 'm')), BaseLayer: schema.Sum(append(b[:], 'b')),
			CreatedAt: "2025-01-01T00:00:00.123456789+00:00", UpdatedAt: "2025-01-01T00:00:00.123456789+00:00", RefCount: 1,
		}
		if i%3 == 0 {
			m.DependencyLayers = []schema.Digest{schema.Sum(append(b[:], 'd'))}
		}
		rec, err := m.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(l.MetadataDir()+"/"+id.String(), rec, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	return store.NewEnvs(l, nil, nil), l
}

func BenchmarkMetadataList(b *testing.B) {
	envs, _ := synthEnvs(b, 2000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		all, err := envs.List(ctx)
		if err != nil || len(all) != 2000 {
			b.Fatalf("List = %d, %v", len(all), err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/2000, "µs/record")
}

// Walk over several batches: file name order, every bad file reported where it is, an
// outsized record read whole, the good ones as Get returns them; List leaves out the
// bad ones.
func TestMetadataWalkManyRecords(t *testing.T) {
	ctx := context.Background()
	envs, l := synthEnvs(t, 700)
	dir := l.MetadataDir()
	names, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	bad := map[string]bool{}
	// A tampered record, one that is not JSON, one in another record's file, a file
	// name that is no env id, a directory and a symlink in a record's place (reported,
	// never followed); a dot file is not a record at all.
	tampered, garbage, moved := names[5].Name(), names[300].Name(), names[650].Name()
	b, _ := os.ReadFile(filepath.Join(dir, tampered))
	_ = os.WriteFile(filepath.Join(dir, tampered), bytes.Replace(b, []byte(`"ref_count": 1`), []byte(`"ref_count": 9`), 1), 0o644)
	_ = os.WriteFile(filepath.Join(dir, garbage), []byte("{not json"), 0o644)
	b, _ = os.ReadFile(filepath.Join(dir, names[0].Name()))
	_ = os.WriteFile(filepath.Join(dir, moved), b, 0o644)
	_ = os.WriteFile(filepath.Join(dir, "not-an-id"), b, 0o644)
	_ = os.WriteFile(filepath.Join(dir, ".tmp-123"), b, 0o644)
	odd := schema.SumString("a directory").String()
	_ = os.Mkdir(filepath.Join(dir, odd), 0o755)
	link := schema.SumString("a symlink").String()
	_ = os.Symlink(names[1].Name(), filepath.Join(dir, link))
	for _, n := range []string{tampered, garbage, moved, "not-an-id", odd, link} {
		bad[n] = true
	}
	// A record far larger than the read buffer.
	big := store.Metadata{EnvID: schema.SumString("big"), ShortID: "big", State: store.StateBuilt, CreatedAt: "c", UpdatedAt: "u"}
	for i := range 200 {
		big.DependencyLayers = append(big.DependencyLayers, schema.SumString(fmt.Sprint(i)))
	}
	rec, _ := big.Encode()
	if len(rec) < 10000 {
		t.Fatalf("big record is %d bytes", len(rec))
	}
	_ = os.WriteFile(envs.Path(big.EnvID), rec, 0o644)

	var seen []string
	err = envs.Walk(ctx, func(e store.Entry) error {
		seen = append(seen, e.Name)
		if bad[e.Name] {
			if !errors.Is(e.Err, store.ErrCorrupt) && !errors.Is(e.Err, store.ErrIntegrity) {
				t.Errorf("%s: %v", e.Name, e.Err)
			}
			return nil
		}
		if e.Err != nil {
			t.Errorf("%s: %v", e.Name, e.Err)
			return nil
		}
		id := schema.MustParseDigest(e.Name)
		want, err := envs.Get(ctx, id)
		if err != nil || !reflect.DeepEqual(e.Meta, want) {
			t.Errorf("%s: Walk gave %+v, Get %+v, %v", e.Name, e.Meta, want, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != 704 || !sort.StringsAreSorted(seen) {
		t.Fatalf("Walk saw %d files (sorted: %v)", len(seen), sort.StringsAreSorted(seen))
	}
	all, err := envs.List(ctx)
	if err != nil || len(all) != 704-len(bad) {
		t.Fatalf("List = %d records, %v", len(all), err)
	}
	for i := 1; i < len(all); i++ {
		if all[i-1].EnvID.String() >= all[i].EnvID.String() {
			t.Fatal("List not sorted by env id")
		}
	}
	var found bool
	for _, m := range all {
		if m.EnvID == big.EnvID {
			found = len(m.DependencyLayers) == 200
		}
	}
	if !found {
		t.Fatal("the big record is missing or cut short")
	}
}

// An error from fn stops Walk at once and comes back as it is; a cancelled context
// stops it before the next batch.
func TestMetadataWalkStops(t *testing.T) {
	envs, _ := synthEnvs(t, 600)
	stop := errors.New("stop")
	n := 0
	err := envs.Walk(context.Background(), func(store.Entry) error {
		n++
		if n == 300 {
			return stop
		}
		return nil
	})
	if err != stop || n != 300 {
		t.Fatalf("Walk = %v after %d calls", err, n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n = 0
	err = envs.Each(ctx, func(store.Metadata) error {
		n++
		cancel()
		return nil
	})
	if !errors.Is(err, context.Canceled) || n > 256 {
		t.Fatalf("Each after cancel = %v after %d calls", err, n)
	}
	if err := envs.Walk(ctx, func(store.Entry) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Walk with a cancelled context = %v", err)
	}
}

func TestMetadataWalkMissingDir(t *testing.T) {
	envs := store.NewEnvs(store.NewLayout(filepath.Join(t.TempDir(), "none")), nil, nil)
	if err := envs.Walk(context.Background(), func(store.Entry) error { return errors.New("called") }); err != nil {
		t.Fatal(err)
	}
}

// EachMapped gives fn what conv made of each readable record, in List's order.
func TestMetadataEachMapped(t *testing.T) {
	ctx := context.Background()
	envs, _ := synthEnvs(t, 600)
	corrupt := schema.SumString("corrupt")
	_ = os.WriteFile(envs.Path(corrupt), []byte("{not json"), 0o644)
	all, err := envs.List(ctx)
	if err != nil || len(all) != 600 {
		t.Fatalf("List = %d, %v", len(all), err)
	}
	var got []string
	err = store.EachMapped(ctx, envs, func(m store.Metadata) string { return m.EnvID.String() + " " + m.Name },
		func(s string) error { got = append(got, s); return nil })
	if err != nil || len(got) != len(all) {
		t.Fatalf("EachMapped = %d items, %v", len(got), err)
	}
	for i, m := range all {
		if got[i] != m.EnvID.String()+" "+m.Name {
			t.Fatalf("item %d = %q, want %s %s", i, got[i], m.EnvID, m.Name)
		}
	}
}
