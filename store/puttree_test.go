package store_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// randomTree writes files of the given sizes with random content under dir.
func randomTree(t *testing.T, dir string, seed uint64, sizes ...int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	for i, n := range sizes {
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		writeFile(t, filepath.Join(dir, fmt.Sprintf("d%d", i%3), fmt.Sprintf("f%03d", i)), string(b), 0o644)
	}
}

// TestPutTree stores exactly what Pack writes, for an archive kept in memory by the
// first pass (small) and one packed a second time (over 8 MiB); a second PutTree of
// the same tree writes nothing, and a torn copy of the object is replaced.
func TestPutTree(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		sizes []int
	}{
		{"small", []int{0, 1, 511, 512, 513, 100 << 10}},
		{"large", []int{5 << 20, 3<<20 + 7, 1 << 20, 12, 0, 700 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLayout(t)
			objs := store.NewObjects(l)
			tree := t.TempDir()
			randomTree(t, tree, 7, tc.sizes...)
			archive := pack(t, tree)
			want := schema.Sum(archive)

			d, err := objs.PutTree(ctx, tree, nil)
			if err != nil || d != want {
				t.Fatalf("PutTree = %s, %v; want %s", d, err, want)
			}
			got, err := objs.Get(ctx, d)
			if err != nil || !bytes.Equal(got, archive) {
				t.Fatalf("stored object differs from Pack's archive (%v)", err)
			}
			before, err := os.Stat(objs.Path(d))
			if err != nil {
				t.Fatal(err)
			}

			// Unchanged tree: same digest, the stored file is not replaced.
			if d2, err := objs.PutTree(ctx, tree, nil); err != nil || d2 != d {
				t.Fatalf("second PutTree = %s, %v", d2, err)
			}
			after, err := os.Stat(objs.Path(d))
			if err != nil || !os.SameFile(before, after) {
				t.Fatalf("an unchanged tree rewrote its object (%v)", err)
			}

			// A torn (short) copy is replaced by a full one.
			if err := os.Truncate(objs.Path(d), int64(len(archive)/2)); err != nil {
				t.Fatal(err)
			}
			if d3, err := objs.PutTree(ctx, tree, nil); err != nil || d3 != d {
				t.Fatalf("PutTree over a torn copy = %s, %v", d3, err)
			}
			if got, err := objs.Get(ctx, d); err != nil || !bytes.Equal(got, archive) {
				t.Fatalf("torn copy not repaired: %v", err)
			}

			// A changed tree gives a new object.
			writeFile(t, filepath.Join(tree, "d0", "new"), "more", 0o644)
			d4, err := objs.PutTree(ctx, tree, nil)
			if err != nil || d4 != schema.Sum(pack(t, tree)) || d4 == d {
				t.Fatalf("PutTree of a changed tree = %s, %v", d4, err)
			}
			if tmp := tempFiles(t, l.ObjectsDir()); len(tmp) != 0 {
				t.Fatalf("temp files left: %v", tmp)
			}
		})
	}
}

// TestPutTreeErrorsLeaveNothing: a missing tree stores the empty archive (as Pack
// does), an unreadable file fails without a temp file, a cancelled context fails.
func TestPutTreeErrorsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	objs := store.NewObjects(l)
	d, err := objs.PutTree(ctx, filepath.Join(t.TempDir(), "missing"), nil)
	if err != nil || d != schema.Sum(make([]byte, 1024)) {
		t.Fatalf("PutTree(missing) = %s, %v", d, err)
	}
	tree := t.TempDir()
	randomTree(t, tree, 9, 9<<20, 10)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := objs.PutTree(cctx, tree, nil); err == nil {
		t.Fatal("PutTree with a cancelled context succeeded")
	}
	if os.Geteuid() != 0 {
		if err := os.Chmod(filepath.Join(tree, "d1", "f001"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := objs.PutTree(ctx, tree, nil); err == nil {
			t.Fatal("PutTree of an unreadable file succeeded")
		}
	}
	if tmp := tempFiles(t, l.ObjectsDir()); len(tmp) != 0 {
		t.Fatalf("temp files left: %v", tmp)
	}
}

// TestVerifyParallelReportsInOrder: many objects, some large, a few corrupted or
// truncated: the parallel verifier names exactly the bad ones, in digest order.
func TestVerifyParallelReportsInOrder(t *testing.T) {
	ctx := context.Background()
	s := store.New(t.TempDir(), store.Options{})
	if err := s.Layout.Initialize(ctx); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(5, 6))
	var ds []schema.Digest
	for i := range 40 {
		n := rng.IntN(4096)
		if i%10 == 0 {
			n = 3<<20 + rng.IntN(1<<20)
		}
		b := make([]byte, n)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		d, err := s.Objects.PutBytes(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	bad := map[string]bool{}
	for i, d := range ds {
		if i%7 != 3 {
			continue
		}
		p := s.Objects.Path(d)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			err = os.Truncate(p, fi.Size()/2)
		} else {
			err = os.WriteFile(p, append([]byte("x"), make([]byte, fi.Size())...), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		bad[d.String()] = true
	}
	rep, err := s.Verify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Checked != len(ds) || rep.Passed != len(ds)-len(bad) {
		t.Fatalf("checked %d passed %d; want %d and %d", rep.Checked, rep.Passed, len(ds), len(ds)-len(bad))
	}
	var prev string
	for _, f := range rep.Failed {
		if f.Kind != "object" || !bad[f.Hash] || !strings.HasPrefix(f.Reason, "object hash mismatch: got ") {
			t.Errorf("unexpected failure %+v", f)
		}
		if f.Hash <= prev {
			t.Errorf("failures out of order: %s after %s", f.Hash, prev)
		}
		prev = f.Hash
	}
	if len(rep.Failed) != len(bad) {
		t.Fatalf("%d failures, want %d", len(rep.Failed), len(bad))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Verify(cctx); err == nil {
		t.Fatal("Verify with a cancelled context succeeded")
	}
}
