package store

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/schema/treehash"
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
	layout Layout
	dir    string
}

var _ ObjectStore = (*Objects)(nil)

// NewObjects returns the object store of a layout. It does no I/O.
func NewObjects(l Layout) *Objects { return &Objects{layout: l, dir: l.ObjectsDir()} }

// Path is the file holding object d.
func (o *Objects) Path(d schema.Digest) string { return filepath.Join(o.dir, d.String()) }

// Put streams r into a temp file in the objects directory while hashing it, then
// renames the file to its digest. Reading, hashing and writing run on separate
// goroutines over a few 1 MiB chunks, so memory stays bounded whatever the size.
// When the object already exists with the same size it is kept and the temp file
// dropped; an existing file of another size (a torn or truncated copy) is replaced.
func (o *Objects) Put(ctx context.Context, r io.Reader) (schema.Digest, error) {
	d, err := o.put(ctx, func(w *chunkPipe) error {
		_, err := w.ReadFrom(ctxReader{ctx, r})
		return err
	})
	return d, wrap("put object", err)
}

// put stores what produce writes into the pipe it is given.
func (o *Objects) put(ctx context.Context, produce func(*chunkPipe) error) (schema.Digest, error) {
	if err := o.layout.mkdir(o.dir); err != nil {
		return schema.Digest{}, err
	}
	f, err := createTemp(o.dir)
	if err != nil {
		return schema.Digest{}, err
	}
	h := schema.NewHash()
	p := newChunkPipe(ctx, h, WriteBehind(f))
	err = produce(p)
	n, cerr := p.Close()
	if err == nil {
		err = cerr
	}
	if err != nil {
		discardTemp(f)
		return schema.Digest{}, err
	}
	d := h.Digest()
	if o.stored(d, n) {
		discardTemp(f)
		return d, nil
	}
	if err := commitTemp(f, o.Path(d)); err != nil {
		return schema.Digest{}, err
	}
	return d, nil
}

// stored reports whether object d is present with size n: then a new copy is not
// written. A file of another size is a torn copy, which a new write replaces.
func (o *Objects) stored(d schema.Digest, n int64) bool {
	fi, err := os.Lstat(o.Path(d))
	return err == nil && fi.Mode().IsRegular() && fi.Size() == n
}

// PutBytes stores b. It hashes b first and writes nothing when the object is stored.
func (o *Objects) PutBytes(ctx context.Context, b []byte) (schema.Digest, error) {
	d, err := o.putBytes(ctx, schema.Sum(b), b)
	return d, wrap("put object", err)
}

// putBytes stores b, whose digest is d.
func (o *Objects) putBytes(ctx context.Context, d schema.Digest, b []byte) (schema.Digest, error) {
	if err := ctx.Err(); err != nil {
		return schema.Digest{}, err
	}
	if o.stored(d, int64(len(b))) {
		return d, nil
	}
	if err := o.layout.mkdir(o.dir); err != nil {
		return schema.Digest{}, err
	}
	f, err := createTemp(o.dir)
	if err != nil {
		return schema.Digest{}, err
	}
	if _, err := f.Write(b); err != nil {
		discardTemp(f)
		return schema.Digest{}, err
	}
	if err := commitTemp(f, o.Path(d)); err != nil {
		return schema.Digest{}, err
	}
	return d, nil
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

// verify re-hashes object d: nil when its content matches its name, an
// *IntegrityError when not, a *NotFoundError when it is missing. An object that fits
// in buf is read into it and hashed on this goroutine; one of treehash.MinSize bytes or
// more is hashed on every core (verifyLarge); one in between is read on this goroutine
// and hashed on another, chunk by chunk.
func (o *Objects) verify(ctx context.Context, d schema.Digest, buf []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(o.Path(d))
	if errors.Is(err, fs.ErrNotExist) {
		return &NotFoundError{What: "object", Key: d.String()}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() >= treehash.MinSize {
		return o.verifyLarge(ctx, d, f, fi.Size())
	}
	var got schema.Digest
	if fi.Size() < int64(len(buf)) {
		// One byte of room more than the size shows a file that grew.
		n, err := io.ReadFull(f, buf)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return err
		}
		if n == len(buf) {
			return o.verifyStream(ctx, d, io.MultiReader(bytes.NewReader(buf), f))
		}
		got = schema.Sum(buf[:n])
	} else {
		return o.verifyStream(ctx, d, f)
	}
	if got != d {
		return &IntegrityError{What: "object", Name: d.String(), Expected: d.String(), Actual: got.String()}
	}
	return nil
}

// verifyLarge hashes an object of treehash.MinSize bytes or more on every core
// (treehash.SumFile). A file whose size changes while it is hashed is hashed again as a
// stream, to its end, so that the result is the same as for a small object: an
// *IntegrityError naming the digest of what the file holds.
func (o *Objects) verifyLarge(ctx context.Context, d schema.Digest, f *os.File, size int64) error {
	readOnce(f)
	got, err := treehash.SumFile(ctx, f, size)
	if errors.Is(err, treehash.ErrSizeChanged) {
		return o.verifyStream(ctx, d, io.NewSectionReader(f, 0, math.MaxInt64))
	}
	if err != nil {
		return err
	}
	var one [1]byte
	if n, _ := f.ReadAt(one[:], size); n > 0 { // the file grew
		return o.verifyStream(ctx, d, io.NewSectionReader(f, 0, math.MaxInt64))
	}
	if got != d {
		return &IntegrityError{What: "object", Name: d.String(), Expected: d.String(), Actual: got.String()}
	}
	return nil
}

func (o *Objects) verifyStream(ctx context.Context, d schema.Digest, r io.Reader) error {
	h := schema.NewHash()
	p := newChunkPipe(ctx, h)
	_, err := p.ReadFrom(ctxReader{ctx, r})
	if _, cerr := p.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := h.Digest(); got != d {
		return &IntegrityError{What: "object", Name: d.String(), Expected: d.String(), Actual: got.String()}
	}
	return nil
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
	h    *schema.Hash
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
	return &VerifyingReader{ctx: ctx, src: src, size: size, want: want, what: what, h: schema.NewHash(), buf: make([]byte, n)}
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
		if got := v.h.Digest(); got != v.want {
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

// pipeDepth is the number of chunks a chunkPipe may hold: the producer fills one
// while the sinks work through the others.
const pipeDepth = 4

// chunkPipe carries a byte stream from one producer to sinks in 1 MiB chunks, each sink
// on its own goroutine and seeing every chunk in order, so that producing (reading files),
// hashing and writing overlap on several cores. Memory: at most pipeDepth chunks.
//
//	producer -- Write/ReadFrom --> cur chunk --ship--> sink 1 goroutine (hash) --+
//	                                        \--------> sink 2 goroutine (file) --+--> free
//
// A chunk goes back to the free list when the last sink is done with it. The first
// sink error stops the producer (its next ship fails) and is what Close returns.
type chunkPipe struct {
	ctx   context.Context
	sinks []chan *chunk
	free  chan *chunk
	made  int
	cur   *chunk
	n     int64
	wg    sync.WaitGroup
	fail  chan struct{} // closed at the first sink error
	once  sync.Once
	err   error // the first sink error, set before fail is closed
	shut  bool
}

type chunk struct {
	b    []byte
	refs atomic.Int32
}

func newChunkPipe(ctx context.Context, sinks ...io.Writer) *chunkPipe {
	p := &chunkPipe{ctx: ctx, free: make(chan *chunk, pipeDepth), fail: make(chan struct{})}
	for _, w := range sinks {
		in := make(chan *chunk, pipeDepth)
		p.sinks = append(p.sinks, in)
		p.wg.Add(1)
		go p.drain(w, in)
	}
	return p
}

// drain feeds one sink. After an error it keeps releasing chunks without writing.
func (p *chunkPipe) drain(w io.Writer, in <-chan *chunk) {
	defer p.wg.Done()
	failed := false
	for c := range in {
		if !failed {
			if _, err := w.Write(c.b); err != nil {
				failed = true
				p.once.Do(func() { p.err = err; close(p.fail) })
			}
		}
		if c.refs.Add(-1) == 0 {
			p.free <- c
		}
	}
}

// next makes p.cur an empty chunk, waiting for a free one when pipeDepth are in use.
func (p *chunkPipe) next() error {
	if p.made < pipeDepth {
		select {
		case c := <-p.free:
			p.cur = c
		default:
			p.made++
			p.cur = &chunk{b: make([]byte, 0, copyBufSize)}
		}
	} else {
		select {
		case c := <-p.free:
			p.cur = c
		case <-p.fail:
			return p.err
		case <-p.ctx.Done():
			return p.ctx.Err()
		}
	}
	p.cur.b = p.cur.b[:0]
	return nil
}

// ship hands the current chunk to every sink.
func (p *chunkPipe) ship() error {
	c := p.cur
	p.cur = nil
	if err := p.ctx.Err(); err != nil {
		return err
	}
	select {
	case <-p.fail:
		return p.err
	default:
	}
	c.refs.Store(int32(len(p.sinks)))
	for _, in := range p.sinks {
		in <- c // never blocks: at most pipeDepth chunks exist
	}
	return nil
}

// Write implements io.Writer.
func (p *chunkPipe) Write(b []byte) (int, error) {
	total := 0
	for len(b) > 0 {
		if p.cur == nil {
			if err := p.next(); err != nil {
				return total, err
			}
		}
		k := copy(p.cur.b[len(p.cur.b):cap(p.cur.b)], b)
		p.cur.b = p.cur.b[:len(p.cur.b)+k]
		b = b[k:]
		total += k
		p.n += int64(k)
		if len(p.cur.b) == cap(p.cur.b) {
			if err := p.ship(); err != nil {
				return total, err
			}
		}
	}
	return total, nil
}

// WriteString implements io.StringWriter.
func (p *chunkPipe) WriteString(s string) (int, error) {
	return p.Write([]byte(s))
}

// WriteByte implements io.ByteWriter.
func (p *chunkPipe) WriteByte(c byte) error {
	_, err := p.Write([]byte{c})
	return err
}

// ReadFrom reads r to its end straight into chunks (no intermediate buffer). Like
// bufio, it gives up with io.ErrNoProgress on a reader that keeps returning nothing.
func (p *chunkPipe) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	empty := 0
	for {
		if p.cur == nil {
			if err := p.next(); err != nil {
				return total, err
			}
		}
		n, err := r.Read(p.cur.b[len(p.cur.b):cap(p.cur.b)])
		if n == 0 && err == nil {
			if empty++; empty >= 100 {
				return total, io.ErrNoProgress
			}
			continue
		}
		empty = 0
		p.cur.b = p.cur.b[:len(p.cur.b)+n]
		total += int64(n)
		p.n += int64(n)
		if len(p.cur.b) == cap(p.cur.b) {
			if serr := p.ship(); serr != nil {
				return total, serr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close ships the last partial chunk, waits for the sinks and returns the number of
// bytes written and the first sink error. It must be called exactly once, also after
// a failed producer (the pending chunk is then still passed on; callers discard the
// result of a failed stream).
func (p *chunkPipe) Close() (int64, error) {
	if p.shut {
		return p.n, errors.New("chunk pipe closed twice")
	}
	p.shut = true
	var err error
	if p.cur != nil && len(p.cur.b) > 0 {
		err = p.ship()
	}
	for _, in := range p.sinks {
		close(in)
	}
	p.wg.Wait()
	select {
	case <-p.fail:
		return p.n, p.err
	default:
	}
	return p.n, err
}
