package store_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/schema/treehash"
)

func randomContent(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// TestVerifyLargeObject: objects from treehash.MinSize on are hashed on every core; a
// clean one passes, and a flipped byte, a truncation (above and below MinSize) and an
// appended byte are each reported with the digest of what the file then holds.
func TestVerifyLargeObject(t *testing.T) {
	ctx := context.Background()
	content := randomContent(2*treehash.MinSize+12345, 1)
	cases := []struct {
		name   string
		damage func(path string) error
		holds  []byte // the file's content after the damage; nil: undamaged
	}{
		{"clean", func(string) error { return nil }, nil},
		{"flipped byte", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{content[len(content)/2] ^ 1}, int64(len(content)/2))
			return err
		}, flip(content, len(content)/2)},
		{"truncated above MinSize", func(p string) error { return os.Truncate(p, treehash.MinSize+1) }, content[:treehash.MinSize+1]},
		{"truncated below MinSize", func(p string) error { return os.Truncate(p, treehash.MinSize-1) }, content[:treehash.MinSize-1]},
		{"grown", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.Write([]byte{7})
			return err
		}, append(append([]byte(nil), content...), 7)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			small, err := s.Objects.PutBytes(ctx, []byte("small"))
			if err != nil {
				t.Fatal(err)
			}
			d, err := s.Objects.PutBytes(ctx, content)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.damage(s.Objects.Path(d)); err != nil {
				t.Fatal(err)
			}
			rep, err := s.Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Checked != 2 {
				t.Fatalf("checked %d objects, want 2", rep.Checked)
			}
			if c.holds == nil {
				if !rep.OK() || rep.Passed != 2 {
					t.Fatalf("clean store: %+v", rep)
				}
				return
			}
			want := "object hash mismatch: got " + schema.Sum(c.holds).String()
			if len(rep.Failed) != 1 || rep.Failed[0].Hash != d.String() || rep.Failed[0].Reason != want {
				t.Fatalf("got %+v, want one failure for %s: %s (small object %s)", rep.Failed, d, want, small)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// TestVerifyLargeObjectCancelled: a cancelled context stops the verification of a large
// object with the context's error.
func TestVerifyLargeObjectCancelled(t *testing.T) {
	s := openStore(t)
	if _, err := s.Objects.PutBytes(context.Background(), randomContent(treehash.MinSize, 2)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Verify(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
}
