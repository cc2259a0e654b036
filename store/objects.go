package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"lukechampine.com/blake3"

	"github.com/karapace/karapace/schema"
)

// ObjectWriter stores a stream under its BLAKE3 digest.
type ObjectWriter interface {
	// Put consumes r to its end and returns the digest it is stored under. Storing
	// the same content twice is not an error.
	Put(ctx context.Context, r io.Reader) (schema.Digest, error)
}

// ObjectReader opens stored objects.
type ObjectReader interface {
	// Open streams an object. The reader verifies the digest as it goes: Read returns
	// an error matching ErrIntegrity instead of io.EOF when the content is corrupt, so
	// a consumer must treat everything it read as void unless it sees io.EOF.
	// A missing object is an error matching ErrNotFound.
	Open(ctx context.Context, d schema.Digest) (io.ReadCloser, error)
}

// ObjectStore is a content-addressed blob store keyed by BLAKE3-256. Objects is the local
// implementation; the remote client and the in-memory fake in storetest are others, and
// storetest.TestObjectStore is the conformance suite they all pass.
type ObjectStore interface {
	ObjectWriter
	ObjectReader
	// Exists reports whether an object is stored (without verifying it).
	Exists(ctx context.Context, d schema.Digest) (bool, error)
	// Remove deletes an object; removing a missing object is not an error.
	Remove(ctx context.Context, d schema.Digest) error
	// List returns every stored digest in ascending order.
	List(ctx context.Context) ([]schema.Digest, error)
}

// copyBufSize is the chunk size for hashing: BLAKE3 is four times faster fed 1 MiB
// writes than 32 KiB ones.
const copyBufSize = 1 << 20

// Objects is the local object store: one file per object, <root>/store/objects/<hex>,
// holding the raw bytes (no compression, no sharding, as the original).
type Objects struct {
	dir string
}

var _ ObjectStore = (*Objects)(nil)

// NewObjects returns the object store of a layout. It does no I/O.
func NewObjects(l Layout) *Objects { return &Objects{dir: l.ObjectsDir()} }

// Path is the file holding object d.
func (o *Objects) Path(d schema.Digest) string { return filepath.Join(o.dir, d.String()) }

// Put streams r into a temp file in the objects directory while hashing it, then
// renames the file to its digest. Memory use is one 1 MiB buffer whatever the size.
// When the object already exists with the same size it is kept and the temp file
// dropped; an existing file of another size (a torn or truncated copy) is replaced.
func (o *Objects) Put(ctx context.Context, r io.Reader) (schema.Digest, error) {
	d, err := o.put(ctx, r)
	return d, wrap("put object", err)
}

func (o *Objects) put(ctx context.Context, r io.Reader) (schema.Digest, error) {
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return schema.Digest{}, err
	}
	f, err := createTemp(o.dir)
	if err != nil {
		return schema.Digest{}, err
	}
	h := schema.Hasher()
	n, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, r}, make([]byte, copyBufSize))
	if err != nil {
		discardTemp(f)
		return schema.Digest{}, err
	}
	d := schema.DigestOf(h)
	final := o.Path(d)
	if fi, err := os.Lstat(final); err == nil && fi.Mode().IsRegular() && fi.Size() == n {
		discardTemp(f)
		return d, nil
	}
	if err := commitTemp(f, final); err != nil {
		return schema.Digest{}, err
	}
	return d, nil
}

// PutBytes stores b.
func (o *Objects) PutBytes(ctx context.Context, b []byte) (schema.Digest, error) {
	return o.Put(ctx, bytes.NewReader(b))
}

// Open streams object d, verifying its digest at the end (see ObjectReader).
func (o *Objects) Open(ctx context.Context, d schema.Digest) (io.ReadCloser, error) {
	r, err := o.open(ctx, d)
	if err != nil {
		return nil, wrap("open object", err)
	}
	return r, nil
}

func (o *Objects) open(ctx context.Context, d schema.Digest) (*VerifyingReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(o.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &NotFoundError{What: "object", Key: d.String()}
	}
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return NewVerifyingReader(ctx, f, fi.Size(), d, "object"), nil
}

// Size returns the stored size of object d.
func (o *Objects) Size(ctx context.Context, d schema.Digest) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fi, err := os.Stat(o.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, &NotFoundError{What: "object", Key: d.String()}
	}
	if err != nil {
		return 0, wrap("object "+d.String(), err)
	}
	return fi.Size(), nil
}

// Get reads a whole object into memory and verifies it. Use Open for large objects.
func (o *Objects) Get(ctx context.Context, d schema.Digest) ([]byte, error) {
	r, err := o.open(ctx, d)
	if err != nil {
		return nil, wrap("get object", err)
	}
	defer r.Close()
	var buf bytes.Buffer
	buf.Grow(int(min(r.size, 1<<30)) + 1)
	if _, err := buf.ReadFrom(r); err != nil {
		return nil, wrap("get object "+d.String(), err)
	}
	return buf.Bytes(), nil
}

// Exists reports whether object d is stored.
func (o *Objects) Exists(ctx context.Context, d schema.Digest) (bool, error) {
	return exists(ctx, o.Path(d))
}

// Remove deletes object d; a missing object is not an error.
func (o *Objects) Remove(ctx context.Context, d schema.Digest) error {
	return wrap("remove object "+d.String(), removeFile(ctx, o.Path(d)))
}

// List returns the digests of all objects, ascending. Dot files (temp files) and names
// that are not digests are left out; Verify reports the latter.
func (o *Objects) List(ctx context.Context) ([]schema.Digest, error) {
	ds, _, err := listDigests(ctx, o.dir)
	return ds, wrap("list objects", err)
}

// listDigests reads a flat directory of digest-named files. It returns the digests in
// ascending order and, separately, the non-dot names that are not digests. A missing
// directory is empty.
func listDigests(ctx context.Context, dir string) ([]schema.Digest, []string, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	entries, err := readDirUnsorted(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	var ds []schema.Digest
	var strays []string
	for _, e := range entries {
		name := e.Name()
		if name == "" || name[0] == '.' {
			continue
		}
		d, err := schema.ParseDigest(name)
		if err != nil {
			strays = append(strays, name)
			continue
		}
		ds = append(ds, d)
	}
	sort.Slice(ds, func(i, j int) bool { return bytes.Compare(ds[i][:], ds[j][:]) < 0 })
	sort.Strings(strays)
	return ds, strays, nil
}

// readDirUnsorted lists a directory without os.ReadDir's sort by name, which costs
// more than the listing itself for 100,000 objects.
func readDirUnsorted(dir string) ([]fs.DirEntry, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func exists(ctx context.Context, path string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	_, err := os.Lstat(path)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return false, wrap("stat", err)
}

func removeFile(ctx context.Context, path string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := os.Remove(path)
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// VerifyingReader streams content and checks its BLAKE3 digest when it reaches the
// end. It reads and hashes chunks of up to 1 MiB whatever the caller's buffer size, so
// hashing runs at full speed under a plain io.Copy.
type VerifyingReader struct {
	ctx  context.Context
	src  io.Reader
	n    int64
	size int64
	want schema.Digest
	what string
	h    *blake3.Hasher
	buf  []byte
	r, w int
	err  error
}

// NewVerifyingReader wraps src, whose content must hash to want; what names it in an
// *IntegrityError ("object", "layer", ...). size is the expected length, or -1 when
// unknown; it only sizes the buffer. Close closes src when it is an io.Closer.
func NewVerifyingReader(ctx context.Context, src io.Reader, size int64, want schema.Digest, what string) *VerifyingReader {
	// Small content gets a small buffer; one byte more than the size lets the first
	// read see the end.
	n := copyBufSize
	if size >= 0 {
		n = int(min(max(size+1, 4096), copyBufSize))
	}
	return &VerifyingReader{ctx: ctx, src: src, size: size, want: want, what: what, h: schema.Hasher(), buf: make([]byte, n)}
}

// Size is the size given to NewVerifyingReader (for objects, the file size at Open).
func (v *VerifyingReader) Size() int64 { return v.size }

// N is the number of bytes read from the source so far.
func (v *VerifyingReader) N() int64 { return v.n }

// Read implements io.Reader. After the last byte it returns io.EOF when the digest
// matched, or an *IntegrityError.
func (v *VerifyingReader) Read(p []byte) (int, error) {
	if v.r == v.w {
		if v.err != nil {
			return 0, v.err
		}
		v.fill()
		if v.r == v.w {
			return 0, v.err
		}
	}
	n := copy(p, v.buf[v.r:v.w])
	v.r += n
	return n, nil
}

// WriteTo implements io.WriterTo, so io.Copy moves whole chunks. It returns nil at a
// verified end, the *IntegrityError otherwise.
func (v *VerifyingReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for {
		if v.r == v.w {
			if v.err != nil {
				if v.err == io.EOF {
					return total, nil
				}
				return total, v.err
			}
			v.fill()
			continue
		}
		n, err := w.Write(v.buf[v.r:v.w])
		v.r += n
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
}

func (v *VerifyingReader) fill() {
	if err := v.ctx.Err(); err != nil {
		v.err = err
		return
	}
	n, err := io.ReadFull(v.src, v.buf)
	v.n += int64(n)
	v.h.Write(v.buf[:n])
	v.r, v.w = 0, n
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		if got := schema.DigestOf(v.h); got != v.want {
			v.err = &IntegrityError{What: v.what, Name: v.want.String(), Expected: v.want.String(), Actual: got.String()}
		} else {
			v.err = io.EOF
		}
	case err != nil:
		v.err = err
	}
}

// Close closes the source if it is an io.Closer.
func (v *VerifyingReader) Close() error {
	if c, ok := v.src.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
