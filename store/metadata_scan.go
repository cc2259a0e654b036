package store

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/schema"
)

// The fast path of DecodeMetadata. Encode writes one exact byte layout, and nearly every
// record on disk is in it. scanMetadata accepts only that layout, with plain ASCII
// strings, so the bytes before the checksum key are exactly what re-encoding the parsed
// fields would give: hashing them verifies the record as the general path does, without
// two JSON parses and a re-encode. Anything else (a legacy record, unknown or reordered
// keys, escapes, other spacing, a checksum mismatch, an invalid field) is left to the
// general path, which also produces every error, so the two paths cannot disagree.

// Literal pieces of the layout, in order; each is followed by a value.
const (
	scanOpen     = "{\n  \"env_id\": "
	scanShortID  = ",\n  \"short_id\": "
	scanName     = ",\n  \"name\": "
	scanStateKey = ",\n  \"state\": "
	scanManifest = ",\n  \"manifest_hash\": "
	scanBase     = ",\n  \"base_layer\": "
	scanDeps     = ",\n  \"dependency_layers\": "
	scanPolicy   = ",\n  \"policy_layer\": "
	scanCreated  = ",\n  \"created_at\": "
	scanUpdated  = ",\n  \"updated_at\": "
	scanRefCount = ",\n  \"ref_count\": "
	scanChecksum = ",\n  \"checksum\": "
	scanClose    = "\n}"
)

type metaScanner struct {
	b   []byte
	i   int
	bad bool
}

func (s *metaScanner) lit(l string) {
	if s.bad || !bytes.HasPrefix(s.b[s.i:], []byte(l)) {
		s.bad = true
		return
	}
	s.i += len(l)
}

// peek reports whether l comes next, without consuming it.
func (s *metaScanner) peek(l string) bool {
	return !s.bad && bytes.HasPrefix(s.b[s.i:], []byte(l))
}

// str reads a string of printable ASCII other than '"' and '\': the strings that
// encoding/json writes as they are and reads back unchanged.
func (s *metaScanner) str() []byte {
	if s.bad || s.i >= len(s.b) || s.b[s.i] != '"' {
		s.bad = true
		return nil
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		c := s.b[j]
		if c == '"' {
			s.i = j + 1
			return s.b[start:j]
		}
		if c < 0x20 || c > 0x7e || c == '\\' {
			break
		}
	}
	s.bad = true
	return nil
}

// optStr reads null (ok false) or a string.
func (s *metaScanner) optStr() ([]byte, bool) {
	if s.peek("null") {
		s.i += len("null")
		return nil, false
	}
	return s.str(), true
}

// digest reads a string of 64 lowercase hex characters.
func (s *metaScanner) digest() schema.Digest {
	d, ok := hexDigest(s.str())
	if !ok {
		s.bad = true
	}
	return d
}

// uint32 reads a decimal number as encoding/json writes it: no sign, no leading zero.
func (s *metaScanner) uint32() uint32 {
	var n uint64
	j := s.i
	for ; j < len(s.b) && '0' <= s.b[j] && s.b[j] <= '9'; j++ {
		n = n*10 + uint64(s.b[j]-'0')
		if n > 1<<32-1 {
			s.bad = true
			return 0
		}
	}
	if s.bad || j == s.i || (s.b[s.i] == '0' && j > s.i+1) {
		s.bad = true
		return 0
	}
	s.i = j
	return uint32(n)
}

// hexDigest is schema.ParseDigest without the allocations: it accepts exactly 64
// lowercase hex characters.
func hexDigest[T string | []byte](b T) (schema.Digest, bool) {
	var d schema.Digest
	if len(b) != 2*len(d) {
		return d, false
	}
	for i := range d {
		hi, lo := hexValues[b[2*i]], hexValues[b[2*i+1]]
		if hi|lo > 0x0f {
			return d, false
		}
		d[i] = hi<<4 | lo
	}
	return d, true
}

// hexValues maps a byte to its value as a lowercase hex digit, 0xff when it is none.
const hexValues = "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\x0a\x0b\x0c\x0d\x0e\x0f\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff" +
	"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"

// parseStateBytes returns the state a PascalCase name stands for.
func parseStateBytes(b []byte) (State, bool) {
	for _, st := range [...]State{StateBuilt, StateRunning, StateDefined, StateFrozen, StateArchived} {
		if string(b) == string(st) {
			return st, true
		}
	}
	return "", false
}

// scanMetadata decodes and verifies a record in Encode's exact layout. ok is false
// when b is in any other form or does not verify; the caller then takes the general
// path. h hashes (it is reset first); nil allocates one.
func scanMetadata(b []byte, h *schema.Hash) (m Metadata, ok bool) {
	s := metaScanner{b: b}
	s.lit(scanOpen)
	m.EnvID = s.digest()
	s.lit(scanShortID)
	short := s.str()
	s.lit(scanName)
	name, _ := s.optStr()
	s.lit(scanStateKey)
	state := s.str()
	s.lit(scanManifest)
	manifest := s.str()
	s.lit(scanBase)
	base := s.str()
	s.lit(scanDeps)
	var deps []schema.Digest
	if s.peek("[]") {
		s.i += 2
	} else {
		s.lit("[\n    ")
		for !s.bad {
			deps = append(deps, s.digest())
			if !s.peek(",\n    ") {
				break
			}
			s.i += len(",\n    ")
		}
		s.lit("\n  ]")
	}
	s.lit(scanPolicy)
	policy, hasPolicy := s.optStr()
	s.lit(scanCreated)
	created := s.str()
	s.lit(scanUpdated)
	updated := s.str()
	s.lit(scanRefCount)
	m.RefCount = s.uint32()
	end := s.i
	s.lit(scanChecksum)
	m.Checksum = s.digest()
	s.lit(scanClose)
	if s.bad || s.i != len(b) {
		return Metadata{}, false
	}

	var good bool
	if m.State, good = parseStateBytes(state); !good {
		return Metadata{}, false
	}
	for _, f := range []struct {
		b []byte
		d *schema.Digest
	}{{manifest, &m.ManifestHash}, {base, &m.BaseLayer}} {
		if len(f.b) > 0 {
			if *f.d, good = hexDigest(f.b); !good {
				return Metadata{}, false
			}
		}
	}
	if hasPolicy {
		if m.PolicyLayer, good = hexDigest(policy); !good {
			return Metadata{}, false
		}
	}

	if h == nil {
		h = schema.NewHash()
	}
	h.Reset()
	_, _ = h.Write(b[:end])
	_, _ = h.Write([]byte(scanClose))
	if h.Digest() != m.Checksum {
		return Metadata{}, false
	}
	// The general path gives an empty, non-nil list for [] (parseDigests).
	if deps == nil {
		deps = []schema.Digest{}
	}
	m.DependencyLayers = deps
	// One allocation for the four strings.
	var tmp [192]byte
	all := string(append(append(append(append(tmp[:0], short...), name...), created...), updated...))
	a, b2, c := len(short), len(short)+len(name), len(short)+len(name)+len(created)
	m.ShortID, m.Name, m.CreatedAt, m.UpdatedAt = all[:a], all[a:b2], all[b2:c], all[c:]
	return m, true
}

// metaDir is an open metadata directory. Walk opens records relative to it, which
// spares the kernel a walk of the whole path for every file.
type metaDir struct {
	fd   int
	path string
}

func openDir(p string) (metaDir, error) {
	for {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return metaDir{}, &fs.PathError{Op: "open", Path: p, Err: err}
		}
		return metaDir{fd: fd, path: p}, nil
	}
}

func (d metaDir) close() { _ = unix.Close(d.fd) }

// metaReader reads and verifies records for one goroutine, reusing its buffer and
// hasher from one record to the next.
type metaReader struct {
	buf []byte
	h   *schema.Hash
}

// read returns the Entry of one file of the metadata directory, as ListWithErrors
// reports it.
func (r *metaReader) read(d metaDir, name string) Entry {
	id, ok := hexDigest(name)
	if !ok {
		return Entry{Name: name, Err: wrap("metadata "+name, fmt.Errorf("%w: file name is not an environment id", ErrCorrupt))}
	}
	if r.h == nil {
		r.h = schema.NewHash()
	}
	var m Metadata
	b, err := r.readFile(d, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = &NotFoundError{What: "environment", Key: id.String()}
	case err == nil:
		m, err = verifyRecord(b, id, r.h)
	}
	if cap(r.buf) > 64<<10 {
		r.buf = nil // an outsized file: do not keep its buffer for the rest of the walk
	}
	return Entry{Name: name, Meta: m, Err: wrap("get metadata", err)}
}

// readFile reads a whole file of d into the reader's buffer: open, read to the end,
// close, and none of the stat, poller registration and allocations of os.ReadFile.
func (r *metaReader) readFile(d metaDir, name string) ([]byte, error) {
	var fd int
	var err error
	for {
		// Never through a symlink put there since the directory was read.
		fd, err = unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(d.path, name), Err: err}
	}
	defer unix.Close(fd)
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		k, err := unix.Read(fd, r.buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: filepath.Join(d.path, name), Err: err}
		}
		if k == 0 {
			return r.buf[:n], nil
		}
		n += k
	}
}

// verifyRecord decodes and verifies the record of the file named id.
func verifyRecord(b []byte, id schema.EnvID, h *schema.Hash) (Metadata, error) {
	m, err := decodeVerified(b, h)
	if err != nil {
		return Metadata{}, err
	}
	if m.EnvID != id {
		return Metadata{}, fmt.Errorf("%w: file %s holds env_id %s", ErrCorrupt, id, m.EnvID)
	}
	return m, nil
}
