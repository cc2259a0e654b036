package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/schema"
)

// Whiteout names, the AUFS/OCI image-layer convention. Kernel overlayfs whiteouts (0/0
// character devices) are packed as empty regular files named WhiteoutPrefix+name, and
// opaque directories get an empty OpaqueMarker file inside.
const (
	WhiteoutPrefix = ".wh."
	OpaqueMarker   = ".wh..wh..opq"
)

// opaqueXattrs mark an overlayfs opaque directory: trusted.* without the userxattr
// mount option, user.* with it (rootless mounts).
var opaqueXattrs = []string{"trusted.overlay.opaque", "user.overlay.opaque"}

const (
	blockSize = 512
	nameLen   = 100
)

// packEntry is one archive member: its name in the archive and where it comes from.
type packEntry struct {
	name string // relative path in the archive, no trailing slash
	src  string // relative path on disk; "" for a synthetic marker file
	kind byte   // 'f' regular, 'd' dir, 'l' symlink, 'w' whiteout or opaque marker
}

// Pack writes a deterministic tar of the tree under dir to w, byte for byte what the
// original's packer writes for the same tree (spec 2.5): entries sorted by full
// relative path, GNU headers with mode = full st_mode, uid, gid and mtime zero, GNU
// long-name records past 100 bytes, and two zero blocks at the end. A missing dir packs
// as an empty archive. File contents are streamed; memory holds only the list of names.
//
// Differences from the original, for overlay upper dirs: a 0/0 character device (a
// kernel overlayfs whiteout) is packed as an empty regular file ".wh.<name>", and a
// directory with an overlay opaque xattr gets an empty ".wh..wh..opq" file; the original
// dropped both. Other devices, FIFOs and sockets are skipped with a warning, as there.
// Names are written as their raw bytes (the original replaced invalid UTF-8 with U+FFFD).
func Pack(ctx context.Context, dir string, w io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	entries, err := collect(ctx, dir, log)
	if err != nil {
		return wrap("pack "+dir, err)
	}
	// Hiding w's own ReadFrom keeps file contents flowing through the 1 MiB buffer.
	bw := bufio.NewWriterSize(struct{ io.Writer }{w}, copyBufSize)
	if err := packEntries(ctx, dir, entries, bw, log); err != nil {
		return wrap("pack "+dir, err)
	}
	return wrap("pack "+dir, bw.Flush())
}

// packWriter is what the packer writes to: a *bufio.Writer or a *chunkPipe. ReadFrom
// moves file contents into the writer's buffer with no copy in between.
type packWriter interface {
	io.Writer
	io.StringWriter
	io.ByteWriter
	io.ReaderFrom
}

// packEntries writes the archive of the collected entries, end blocks included.
func packEntries(ctx context.Context, dir string, entries []packEntry, w packWriter, log *slog.Logger) error {
	p := packer{w: w}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := p.entry(ctx, dir, e, log); err != nil {
			return err
		}
	}
	_, err := w.Write(make([]byte, 2*blockSize))
	return err
}

// PutTree stores the archive Pack writes for dir as an object and returns its digest,
// reading the tree once when that object is already stored (the common case of a
// commit with no change since the last one) and writing nothing then.
//
// The first pass packs into the hasher alone, keeping the archive in memory if it is
// at most treeKeep bytes. When no object of that digest and size exists, the kept bytes
// are written out, or, for a larger archive, the tree is packed a second time into a
// temp file while hashing (Put). The stored digest is always that of the bytes written:
// if the tree changed between the passes, the second digest is returned.
func (o *Objects) PutTree(ctx context.Context, dir string, log *slog.Logger) (schema.Digest, error) {
	d, err := o.putTree(ctx, dir, log)
	return d, wrap("pack "+dir, err)
}

// treeKeep bounds the archive the first pass of PutTree keeps in memory.
const treeKeep = 8 << 20

func (o *Objects) putTree(ctx context.Context, dir string, log *slog.Logger) (schema.Digest, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	entries, err := collect(ctx, dir, log)
	if err != nil {
		return schema.Digest{}, err
	}
	h := schema.NewHash()
	keep := &prefixBuffer{limit: treeKeep}
	p := newChunkPipe(ctx, h, keep)
	err = packEntries(ctx, dir, entries, p, log)
	n, cerr := p.Close()
	if err == nil {
		err = cerr
	}
	if err != nil {
		return schema.Digest{}, err
	}
	d := h.Digest()
	if o.stored(d, n) {
		return d, nil
	}
	if !keep.over {
		return o.putBytes(ctx, d, keep.b)
	}
	keep.b = nil
	return o.put(ctx, func(w *chunkPipe) error {
		return packEntries(ctx, dir, entries, w, log)
	})
}

// prefixBuffer keeps what is written to it up to limit bytes, and nothing once more
// than that was written.
type prefixBuffer struct {
	b     []byte
	limit int
	over  bool
}

func (k *prefixBuffer) Write(p []byte) (int, error) {
	if !k.over {
		if k.b == nil {
			k.b = make([]byte, 0, k.limit) // at once: no copies as it grows
		}
		if len(k.b)+len(p) > k.limit {
			k.over, k.b = true, nil
		} else {
			k.b = append(k.b, p...)
		}
	}
	return len(p), nil
}

// collect walks dir without following symlinks and returns every entry sorted bytewise
// by its archive name (not in per-directory walk order).
func collect(ctx context.Context, dir string, log *slog.Logger) ([]packEntry, error) {
	var out []packEntry
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	var walk func(rel string) error
	walk = func(rel string) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		des, err := os.ReadDir(filepath.Join(dir, rel))
		if err != nil {
			return err
		}
		for _, de := range des {
			child := path.Join(rel, de.Name())
			switch t := de.Type(); {
			case t.IsDir():
				out = append(out, packEntry{name: child, src: child, kind: 'd'})
				if isOpaque(filepath.Join(dir, child)) {
					out = append(out, packEntry{name: path.Join(child, OpaqueMarker), kind: 'w'})
				}
				if err := walk(child); err != nil {
					return err
				}
			case t.IsRegular():
				out = append(out, packEntry{name: child, src: child, kind: 'f'})
			case t&fs.ModeSymlink != 0:
				out = append(out, packEntry{name: child, src: child, kind: 'l'})
			case t&fs.ModeCharDevice != 0 && isWhiteout(filepath.Join(dir, child)):
				out = append(out, packEntry{name: path.Join(rel, WhiteoutPrefix+de.Name()), kind: 'w'})
			default:
				log.Warn("skipping unsupported file type: " + child)
			}
		}
		return nil
	}
	if err := walk(""); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	// A whiteout and a literal ".wh.<name>" file could give the same name; keep one.
	dedup := out[:0]
	for i, e := range out {
		if i > 0 && e.name == out[i-1].name {
			continue
		}
		dedup = append(dedup, e)
	}
	return dedup, nil
}

func isWhiteout(p string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(p string) bool {
	buf := make([]byte, 8)
	for _, x := range opaqueXattrs {
		n, err := unix.Lgetxattr(p, x, buf)
		if err == nil && n == 1 && buf[0] == 'y' {
			return true
		}
	}
	return false
}

type packer struct {
	w packWriter
}

func (p *packer) entry(ctx context.Context, dir string, e packEntry, log *slog.Logger) error {
	if e.kind == 'w' {
		return p.header(e.name, unix.S_IFREG|0o644, 0, '0', "")
	}
	full := filepath.Join(dir, e.src)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		log.Warn(fmt.Sprintf("skipping %s: metadata error: %v", e.src, err))
		return nil
	}
	mode := st.Mode
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return p.header(e.name+"/", mode, 0, '5', "")
	case unix.S_IFLNK:
		target, err := os.Readlink(full)
		if err != nil {
			return err
		}
		return p.header(e.name, mode, 0, '2', target)
	case unix.S_IFREG:
		return p.file(ctx, full, e.name, mode, st.Size)
	default:
		log.Warn("skipping unsupported file type: " + e.src)
		return nil
	}
}

func (p *packer) file(ctx context.Context, full, name string, mode uint32, size int64) error {
	f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := p.header(name, mode, size, '0', ""); err != nil {
		return err
	}
	n, err := p.w.ReadFrom(ctxReader{ctx, io.LimitReader(f, size)})
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: file shrank while packing (%d of %d bytes)", full, n, size)
	}
	return p.pad(size)
}

func (p *packer) pad(size int64) error {
	if r := size % blockSize; r != 0 {
		_, err := p.w.Write(make([]byte, blockSize-r))
		return err
	}
	return nil
}

// header writes the GNU header of one entry, preceded by GNU long-name ('L') and
// long-link ('K') records when name or link target do not fit in 100 bytes.
func (p *packer) header(name string, mode uint32, size int64, typeflag byte, link string) error {
	var h [blockSize]byte
	if !renderPath(h[0:nameLen], name, false) {
		if err := p.longRecord('L', name); err != nil {
			return err
		}
		cut := nameLen
		if !utf8.ValidString(name[:cut]) {
			cut = validUTF8Prefix(name[:cut])
		}
		renderPath(h[0:nameLen], name[:cut], false)
	}
	if typeflag == '2' {
		if link == "" {
			return fmt.Errorf("%s: empty symlink target", name)
		}
		if !renderPath(h[157:157+nameLen], link, true) {
			if len(link) < nameLen {
				return fmt.Errorf("%s: symlink target %q cannot be stored", name, link)
			}
			if err := p.longRecord('K', link); err != nil {
				return err
			}
		}
	}
	octal(h[100:108], uint64(mode))
	octal(h[108:116], 0)
	octal(h[116:124], 0)
	sizeField(h[124:136], size)
	octal(h[136:148], 0)
	h[156] = typeflag
	copy(h[257:], "ustar  \x00")
	checksum(&h)
	_, err := p.w.Write(h[:])
	return err
}

// longRecord writes a GNU ././@LongLink record holding s plus a NUL.
func (p *packer) longRecord(typeflag byte, s string) error {
	var h [blockSize]byte
	copy(h[:], "././@LongLink")
	octal(h[100:108], 0o644)
	octal(h[108:116], 0)
	octal(h[116:124], 0)
	sizeField(h[124:136], int64(len(s)+1))
	octal(h[136:148], 0)
	h[156] = typeflag
	copy(h[257:], "ustar  \x00")
	checksum(&h)
	if _, err := p.w.Write(h[:]); err != nil {
		return err
	}
	if _, err := p.w.WriteString(s); err != nil {
		return err
	}
	if err := p.w.WriteByte(0); err != nil {
		return err
	}
	return p.pad(int64(len(s) + 1))
}

// renderPath writes p into a zeroed header field component by component, as the
// original's tar library does, and reports whether it fit. A failed attempt leaves the
// components that fit in the field; the original's output keeps those leftovers, so
// we do too. Link targets keep a leading "/", "." and ".." components; names never
// contain them.
func renderPath(field []byte, p string, link bool) bool {
	pos := 0
	put := func(s string) bool {
		if len(s) > len(field)-pos {
			return false
		}
		copy(field[pos:], s)
		if pos+len(s) < len(field) {
			field[pos+len(s)] = 0
		}
		pos += len(s)
		return true
	}
	comps := components(p)
	if len(comps) == 0 {
		return false
	}
	needSlash := false
	for _, c := range comps {
		if !link && (c == "/" || c == "." || c == "..") {
			continue // never produced by collect
		}
		if needSlash && !put("/") {
			return false
		}
		if !put(c) {
			return false
		}
		if c != "/" {
			needSlash = true
		}
	}
	if strings.HasSuffix(p, "/") && !put("/") {
		return false
	}
	return true
}

// components splits a path the way Rust's Path::components does on Unix: a leading
// "/" is a component of its own, empty parts and "." are dropped except a leading ".",
// ".." is kept, a trailing slash is ignored.
func components(p string) []string {
	var out []string
	rest := p
	if strings.HasPrefix(p, "/") {
		out = append(out, "/")
		rest = strings.TrimLeft(p, "/")
	} else if p == "." || strings.HasPrefix(p, "./") {
		out = append(out, ".")
		rest = p[1:]
	}
	for _, c := range strings.Split(rest, "/") {
		if c == "" || c == "." {
			continue
		}
		out = append(out, c)
	}
	return out
}

func validUTF8Prefix(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return len(s)
}

// octal writes v as len(field)-1 zero-padded octal digits and a NUL.
func octal(field []byte, v uint64) {
	s := fmt.Sprintf("%0*o", len(field)-1, v)
	copy(field, s[len(s)-(len(field)-1):])
	field[len(field)-1] = 0
}

// sizeField writes a size in octal, or base-256 from 8 GiB up (GNU extension).
func sizeField(field []byte, size int64) {
	if size < 1<<33 {
		octal(field, uint64(size))
		return
	}
	clear(field)
	field[0] = 0x80
	u := uint64(size)
	for i := len(field) - 1; i >= 4; i-- {
		field[i] = byte(u)
		u >>= 8
	}
}

// checksum fills the chksum field: the unsigned byte sum with the field counted as
// spaces, 7 octal digits and a NUL (GNU tar writes 6 digits, NUL, space).
func checksum(h *[blockSize]byte) {
	copy(h[148:156], "        ")
	var sum uint64
	for _, b := range h {
		sum += uint64(b)
	}
	octal(h[148:156], sum)
}
