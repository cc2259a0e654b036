package remote

import (
	"fmt"
	"io"

	"github.com/karapace/karapace/schema"
)

// chunk is the read and hash granularity: blake3 runs at a quarter of its speed when fed
// 32 KiB writes, so every stream is hashed in 1 MiB pieces.
const chunk = 1 << 20

// VerifyingReader streams src through blake3 in 1 MiB chunks. At the end of src it
// returns an *IntegrityError instead of io.EOF when the bytes did not hash to want, so a
// consumer that stores only on a clean EOF never stores bad bytes. It also implements
// io.WriterTo, so io.Copy writes whole chunks.
type VerifyingReader struct {
	src        io.Reader
	want       schema.Digest
	key        string
	h          *schema.Hash
	buf        []byte
	start, end int
	n          int64
	size       int64 // -1: unknown
	err        error
}

// NewVerifyingReader returns a reader of src that checks the bytes against want; key
// names the blob in the error.
func NewVerifyingReader(src io.Reader, want schema.Digest, key string) *VerifyingReader {
	return &VerifyingReader{src: src, want: want, key: key, h: schema.NewHash(), buf: make([]byte, chunk), size: -1}
}

// N returns the number of bytes read from src so far.
func (v *VerifyingReader) N() int64 { return v.n }

// ExpectSize tells v how many bytes src holds. v then checks the digest as soon as it
// has read that many, before handing out the last chunk: a bad blob never reaches its
// consumer whole (an upload ends short and the receiver stores nothing), even when its
// size is a multiple of the chunk size.
func (v *VerifyingReader) ExpectSize(size int64) *VerifyingReader {
	v.size = size
	return v
}

func (v *VerifyingReader) fill() {
	buf := v.buf
	if v.size >= 0 && v.size-v.n < int64(len(buf)) {
		buf = buf[:v.size-v.n]
	}
	n, err := io.ReadFull(v.src, buf)
	v.start, v.end = 0, n
	v.n += int64(n)
	_, _ = v.h.Write(buf[:n])
	if err == nil && v.size >= 0 && v.n == v.size {
		err = io.EOF
	}
	switch err {
	case nil:
	case io.EOF, io.ErrUnexpectedEOF:
		got := v.h.Digest()
		switch {
		case v.size >= 0 && v.n != v.size:
			v.err = fmt.Errorf("%s: read %d bytes, expected %d: %w", v.key, v.n, v.size, io.ErrUnexpectedEOF)
			v.start, v.end = 0, 0
		case got != v.want:
			v.err = &IntegrityError{Key: v.key, Expected: v.want.String(), Actual: got.String()}
			v.start, v.end = 0, 0 // withhold the last chunk
		default:
			v.err = io.EOF
		}
	default:
		v.err = err
	}
}

// Read implements io.Reader.
func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.start == v.end {
		if v.err != nil {
			return 0, v.err
		}
		v.fill()
		if v.start == v.end {
			return 0, v.err
		}
	}
	n := copy(p, v.buf[v.start:v.end])
	v.start += n
	return n, nil
}

// WriteTo implements io.WriterTo.
func (v *VerifyingReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if v.start == v.end {
			if v.err != nil {
				if v.err == io.EOF {
					return total, nil
				}
				return total, v.err
			}
			v.fill()
			continue
		}
		n, err := w.Write(v.buf[v.start:v.end])
		v.start += n
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}
