package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/schema/treehash"
)

// TestVerifyLargeShrunk: a file that is shorter than its size at stat time (truncated
// between stat and hash) is hashed again as a stream: an *IntegrityError naming the
// digest of what it holds, not a crash or a read error.
func TestVerifyLargeShrunk(t *testing.T) {
	ctx := context.Background()
	o := NewObjects(NewLayout(t.TempDir()))
	content := make([]byte, 2*treehash.MinSize)
	_, _ = rand.NewChaCha8([32]byte{3}).Read(content)
	d, err := o.PutBytes(ctx, content)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(o.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := o.verifyLarge(ctx, d, f, int64(len(content))); err != nil {
		t.Fatalf("intact: %v", err)
	}
	if err := os.Truncate(o.Path(d), treehash.MinSize+5); err != nil {
		t.Fatal(err)
	}
	err = o.verifyLarge(ctx, d, f, int64(len(content)))
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.Actual != schema.Sum(content[:treehash.MinSize+5]).String() {
		t.Fatalf("got %v, want an IntegrityError with the truncated content's digest", err)
	}
}
