package remote

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/karapace/karapace/schema"
)

func TestVerifyingReader(t *testing.T) {
	for _, size := range []int{0, 1, chunk - 1, chunk, chunk + 1, 3 * chunk} {
		data := bytes.Repeat([]byte{0x5a}, size)
		good := schema.Sum(data)
		// Good data, with and without a known size, through Read and WriteTo.
		for _, known := range []bool{false, true} {
			v := NewVerifyingReader(bytes.NewReader(data), good, "k")
			if known {
				v.ExpectSize(int64(size))
			}
			var out bytes.Buffer
			if _, err := io.Copy(&out, v); err != nil || !bytes.Equal(out.Bytes(), data) {
				t.Fatalf("size %d known=%v: %v", size, known, err)
			}
			v = NewVerifyingReader(bytes.NewReader(data), good, "k")
			if b, err := io.ReadAll(struct{ io.Reader }{v}); err != nil || !bytes.Equal(b, data) {
				t.Fatalf("size %d Read: %v", size, err)
			}
		}
		if size == 0 {
			continue
		}
		// Bad data with a known size: the consumer never gets every byte.
		bad := append([]byte(nil), data...)
		bad[size-1] ^= 1
		v := NewVerifyingReader(bytes.NewReader(bad), good, "k").ExpectSize(int64(size))
		b, err := io.ReadAll(struct{ io.Reader }{v})
		if !errors.Is(err, ErrIntegrity) {
			t.Fatalf("size %d: bad data gave %v", size, err)
		}
		if len(b) >= size {
			t.Fatalf("size %d: all %d bytes handed out before the integrity error", size, len(b))
		}
		// Short source.
		v = NewVerifyingReader(bytes.NewReader(data[:size-1]), good, "k").ExpectSize(int64(size))
		if _, err := io.ReadAll(struct{ io.Reader }{v}); !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Fatalf("size %d: short source gave %v", size, err)
		}
	}
}
