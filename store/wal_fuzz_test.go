package store_test

import (
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// FuzzDecodeOp: decoding never panics, and whatever decodes re-encodes and decodes to
// the same entry.
func FuzzDecodeOp(f *testing.F) {
	f.Add([]byte(`{"op_id":"20250101120000123-ad487491","kind":"Gc","env_id":"gc","timestamp":"t","rollback_steps":[]}`))
	f.Add([]byte(`{"op_id":"1-2","kind":"Build","env_id":"e","timestamp":"t","rollback_steps":[{"RemoveDir":"/x"},{"ResetState":{"env_id":"e","target_state":"built"}},{"Rename":{"from":"/a","to":"/b"}}]}`))
	f.Add([]byte(`{"rollback_steps":[{"A":1,"B":2}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := store.DecodeOp(b)
		if err != nil {
			return
		}
		enc, err := schema.MarshalPretty(op)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := store.DecodeOp(enc)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", enc, err)
		}
		enc2, _ := schema.MarshalPretty(again)
		if string(enc) != string(enc2) {
			t.Fatalf("unstable round trip:\n%s\n%s", enc, enc2)
		}
	})
}
