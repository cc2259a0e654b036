package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names a tarball's compression, detected from its first bytes.
type Compression string

const (
	CompressionNone  Compression = "none"
	CompressionGzip  Compression = "gzip"
	CompressionXz    Compression = "xz"
	CompressionZstd  Compression = "zstd"
	CompressionBzip2 Compression = "bzip2"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
)

// DetectCompression looks at the first bytes of a tarball. Anything unrecognised is
// taken to be a plain tar; the tar reader rejects it if it is not.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicXz):
		return CompressionXz
	case bytes.HasPrefix(head, magicGzip):
		return CompressionGzip
	case bytes.HasPrefix(head, magicZstd):
		return CompressionZstd
	case bytes.HasPrefix(head, magicBzip2):
		return CompressionBzip2
	}
	return CompressionNone
}

// decompress wraps r in the decompressor its magic bytes call for. finish(ok) releases
// it; with ok (the archive was read to its end) it also reports a decompressor failure
// that the tar reader could not see.
func decompress(ctx context.Context, r io.Reader, xzPath string) (_ io.Reader, _ Compression, finish func(ok bool) error, _ error) {
	br := bufio.NewReaderSize(r, 1<<20)
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, "", nil, err
	}
	comp := DetectCompression(head)
	noop := func(bool) error { return nil }
	switch comp {
	case CompressionXz:
		if xzPath != "" {
			return startXz(ctx, xzPath, br)
		}
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, comp, nil, fmt.Errorf("%w: xz: %v", ErrUnsafeArchive, err)
		}
		return xr, comp, noop, nil
	case CompressionGzip:
		gr, err := gzip.NewReader(br)
		if err != nil {
			return nil, comp, nil, fmt.Errorf("%w: gzip: %v", ErrUnsafeArchive, err)
		}
		return gr, comp, func(bool) error { return gr.Close() }, nil
	case CompressionZstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, comp, nil, fmt.Errorf("%w: zstd: %v", ErrUnsafeArchive, err)
		}
		return zr, comp, func(bool) error { zr.Close(); return nil }, nil
	case CompressionBzip2:
		return bzip2.NewReader(br), comp, noop, nil
	}
	return br, comp, noop, nil
}

// startXz decompresses with the xz program: four times faster than the pure Go reader
// (2.0 s against 8.7 s for a 200 MB Debian rootfs here), and image servers ship xz.
// The archive is still read and written by Go; xz only turns bytes into bytes.
func startXz(ctx context.Context, xzPath string, in io.Reader) (io.Reader, Compression, func(bool) error, error) {
	cmd := exec.CommandContext(ctx, xzPath, "--decompress", "--stdout", "--threads=0")
	cmd.Stdin = in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, CompressionXz, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, CompressionXz, nil, fmt.Errorf("start %s: %w", xzPath, err)
	}
	finish := func(ok bool) error {
		if !ok {
			cmd.Process.Kill()
			cmd.Wait()
			return nil
		}
		io.Copy(io.Discard, out) // trailing padding after the tar end marker
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("%w: xz: %v: %s", ErrUnsafeArchive, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	return out, CompressionXz, finish, nil
}

// ExtractStats counts what an extraction did.
type ExtractStats struct {
	Compression    Compression
	Dirs, Files    int
	Symlinks       int
	Hardlinks      int
	SkippedSpecial int // device nodes and FIFOs: never created
	DroppedSetID   int // files whose setuid/setgid bits were dropped
}

type extractOptions struct {
	// keepSetID keeps setuid/setgid bits; only sensible for the real root user.
	keepSetID bool
	// xzPath is the xz program used for xz tarballs; empty means the Go decoder.
	xzPath string
	log    *slog.Logger
}

// extract unpacks the (possibly compressed) tarball r into dir, which must exist.
//
// It is safe for an unprivileged user and against hostile archives: every path goes
// through an os.Root, so nothing (no "..", no absolute path, no symlink planted earlier
// in the archive) can reach outside dir; an absolute or ".." entry name rejects the whole
// archive. Device nodes and FIFOs are skipped. Ownership is not restored: everything is
// owned by the caller. Directories get u+rwx and files u+r, so the caller can always read
// and later delete the tree. Setuid and setgid bits survive only with keepSetID.
func extract(ctx context.Context, r io.Reader, dir string, opts extractOptions) (ExtractStats, error) {
	var st ExtractStats
	dr, comp, finish, err := decompress(ctx, r, opts.xzPath)
	if err != nil {
		return st, err
	}
	complete := false
	defer func() {
		if !complete {
			finish(false)
		}
	}()
	st.Compression = comp
	root, err := os.OpenRoot(dir)
	if err != nil {
		return st, err
	}
	defer root.Close()
	chain := &dirChain{top: root}
	defer chain.reset()

	tr := tar.NewReader(dr)
	buf := make([]byte, 256<<10)
	for n := 0; ; n++ {
		if n%256 == 0 && ctx.Err() != nil {
			return st, ctx.Err()
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			if n == 0 {
				return st, fmt.Errorf("%w: empty archive", ErrUnsafeArchive)
			}
			complete = true
			return st, finish(true)
		}
		if err != nil {
			return st, fmt.Errorf("%w: reading %s tar: %v", ErrUnsafeArchive, comp, err)
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return st, err
		}
		if name == "." {
			continue // the archive's top directory is dir itself
		}
		done, err := fastEntry(chain, tr, hdr, name, buf, opts, &st)
		if err != nil {
			return st, err
		}
		if done {
			continue
		}
		// The general path, through the top root with the full name; it may replace
		// entries, so the chain of open directories is dropped first.
		chain.reset()
		if err := extractEntry(root, tr, hdr, name, buf, opts, &st); err != nil {
			return st, err
		}
	}
}

// dirChain keeps the directories of the current entry's path open, so that creating an
// entry is one syscall relative to its parent instead of a walk from the top for each
// operation (archives list a directory's entries together). Each directory is opened
// as an os.Root below its parent's, so it cannot lead outside the tree either.
type dirChain struct {
	top   *os.Root
	names []string
	roots []*os.Root
}

// dir returns the open directory p (a cleaned relative path, "." for the top), creating
// missing directories (0755, as tar does for implied parents).
func (c *dirChain) dir(p string) (*os.Root, error) {
	if p == "." {
		return c.top, nil
	}
	parts := strings.Split(p, "/")
	keep := 0
	for keep < len(parts) && keep < len(c.names) && parts[keep] == c.names[keep] {
		keep++
	}
	for i := len(c.roots) - 1; i >= keep; i-- {
		c.roots[i].Close()
	}
	c.names, c.roots = c.names[:keep], c.roots[:keep]
	for _, part := range parts[keep:] {
		parent := c.top
		if len(c.roots) > 0 {
			parent = c.roots[len(c.roots)-1]
		}
		r, err := parent.OpenRoot(part)
		if errors.Is(err, fs.ErrNotExist) {
			if err = parent.Mkdir(part, 0o755); err == nil {
				r, err = parent.OpenRoot(part)
			}
		}
		if err != nil {
			return nil, err
		}
		c.names = append(c.names, part)
		c.roots = append(c.roots, r)
	}
	return c.roots[len(c.roots)-1], nil
}

func (c *dirChain) reset() {
	for _, r := range c.roots {
		r.Close()
	}
	c.names, c.roots = nil, nil
}

// fastEntry creates the common entries (a new directory, file or symlink) relative to
// the open parent. It reports false, having consumed nothing, when the general path
// must handle the entry: the name exists already, the parent is reached through a
// symlink that leaves the parent's subtree, or the entry is of another type.
func fastEntry(c *dirChain, tr *tar.Reader, hdr *tar.Header, name string, buf []byte, opts extractOptions, st *ExtractStats) (bool, error) {
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink:
	default:
		return false, nil
	}
	parent, err := c.dir(path.Dir(name))
	if err != nil {
		c.reset()
		return false, nil
	}
	base := path.Base(name)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := parent.Mkdir(base, 0o700); err != nil {
			return false, nil
		}
		if err := parent.Chmod(base, fileMode(hdr, opts, st, true)); err != nil {
			return false, fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
		st.Dirs++
	case tar.TypeReg:
		f, err := parent.OpenFile(base, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return false, nil
		}
		if _, err := io.CopyBuffer(f, struct{ io.Reader }{tr}, buf); err != nil {
			f.Close()
			if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
				return false, fmt.Errorf("%w: %q: %v", ErrUnsafeArchive, hdr.Name, err)
			}
			return false, fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
		if err := f.Chmod(fileMode(hdr, opts, st, false)); err != nil {
			f.Close()
			return false, fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
		if err := f.Close(); err != nil {
			return false, fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
		if err := parent.Chtimes(base, hdr.ModTime, hdr.ModTime); err != nil {
			return false, fmt.Errorf("extract %q: %w", hdr.Name, err)
		}
		st.Files++
	case tar.TypeSymlink:
		if err := parent.Symlink(hdr.Linkname, base); err != nil {
			return false, nil
		}
		st.Symlinks++
	}
	return true, nil
}

// entryName validates a member name and returns it cleaned and relative.
func entryName(raw string) (string, error) {
	if strings.HasPrefix(raw, "/") {
		return "", fmt.Errorf("%w: absolute path %q", ErrUnsafeArchive, raw)
	}
	if strings.IndexByte(raw, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL in path %q", ErrUnsafeArchive, raw)
	}
	for _, part := range strings.Split(raw, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: path %q climbs out with ..", ErrUnsafeArchive, raw)
		}
	}
	name := path.Clean(raw)
	if name == ".." || strings.HasPrefix(name, "../") {
		return "", fmt.Errorf("%w: path %q climbs out with ..", ErrUnsafeArchive, raw)
	}
	return name, nil
}

func extractEntry(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string, buf []byte, opts extractOptions, st *ExtractStats) error {
	fail := func(err error) error {
		if errors.Is(err, ErrUnsafeArchive) {
			return err
		}
		// os.Root refuses anything that would leave the tree; say so.
		if strings.Contains(err.Error(), "escapes") {
			return fmt.Errorf("%w: %s %q: %v", ErrUnsafeArchive, typeName(hdr.Typeflag), hdr.Name, err)
		}
		return fmt.Errorf("extract %q: %w", hdr.Name, err)
	}
	if dirName := path.Dir(name); dirName != "." {
		if err := root.MkdirAll(dirName, 0o755); err != nil {
			return fail(err)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := root.Lstat(name)
		if err == nil && !fi.IsDir() {
			if err := root.Remove(name); err != nil {
				return fail(err)
			}
			err = fs.ErrNotExist
		}
		if errors.Is(err, fs.ErrNotExist) {
			err = root.Mkdir(name, 0o700)
		}
		if err != nil {
			return fail(err)
		}
		if err := root.Chmod(name, fileMode(hdr, opts, st, true)); err != nil {
			return fail(err)
		}
		st.Dirs++
	case tar.TypeReg, tar.TypeGNUSparse, '\x00' /* old-style regular file */ :
		if err := removeNonDir(root, name); err != nil {
			return fail(err)
		}
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fail(err)
		}
		if _, err := io.CopyBuffer(f, struct{ io.Reader }{tr}, buf); err != nil {
			f.Close()
			if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: %q: %v", ErrUnsafeArchive, hdr.Name, err)
			}
			return fail(err)
		}
		if err := f.Chmod(fileMode(hdr, opts, st, false)); err != nil {
			f.Close()
			return fail(err)
		}
		if err := f.Close(); err != nil {
			return fail(err)
		}
		if err := root.Chtimes(name, hdr.ModTime, hdr.ModTime); err != nil {
			return fail(err)
		}
		st.Files++
	case tar.TypeSymlink:
		if err := removeNonDir(root, name); err != nil {
			return fail(err)
		}
		// The link's text is stored as is: it is never followed while extracting, and
		// at run time it resolves inside the container's root.
		if err := root.Symlink(hdr.Linkname, name); err != nil {
			return fail(err)
		}
		st.Symlinks++
	case tar.TypeLink:
		target, err := entryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link %q: %w", hdr.Name, err)
		}
		fi, err := root.Lstat(target)
		if err != nil {
			return fmt.Errorf("%w: hard link %q to %q: target not in the archive so far: %v", ErrUnsafeArchive, hdr.Name, hdr.Linkname, err)
		}
		if fi.IsDir() {
			return fmt.Errorf("%w: hard link %q to directory %q", ErrUnsafeArchive, hdr.Name, hdr.Linkname)
		}
		if err := removeNonDir(root, name); err != nil {
			return fail(err)
		}
		if err := root.Link(target, name); err != nil {
			return fail(err)
		}
		st.Hardlinks++
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		opts.log.Debug("image: skipping special file", "name", hdr.Name, "type", typeName(hdr.Typeflag))
		st.SkippedSpecial++
	default:
		opts.log.Debug("image: skipping unsupported tar entry", "name", hdr.Name, "type", string(hdr.Typeflag))
	}
	return nil
}

// removeNonDir clears the way for a new file, as tar does when a member appears twice.
func removeNonDir(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%w: %q is a directory earlier in the archive", ErrUnsafeArchive, name)
	}
	return root.Remove(name)
}

// fileMode computes the mode to set: the archive's permission bits, u+rwx on directories
// and u+r on files so the owner can always read and delete the tree, and setuid/setgid
// only when allowed.
func fileMode(hdr *tar.Header, opts extractOptions, st *ExtractStats, isDir bool) os.FileMode {
	bits := uint32(hdr.Mode) & 0o7777
	if isDir {
		bits |= 0o700
	} else {
		bits |= 0o400
	}
	if bits&0o6000 != 0 && !opts.keepSetID {
		if !isDir {
			opts.log.Debug("image: dropping setuid/setgid bits (not running as real root)", "name", hdr.Name, "mode", fmt.Sprintf("%04o", bits))
			st.DroppedSetID++
		}
		bits &^= 0o6000
	}
	mode := os.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		mode |= os.ModeSetuid
	}
	if bits&0o2000 != 0 {
		mode |= os.ModeSetgid
	}
	if bits&0o1000 != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

func typeName(t byte) string {
	switch t {
	case tar.TypeDir:
		return "directory"
	case tar.TypeReg, '\x00':
		return "file"
	case tar.TypeSymlink:
		return "symlink"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "fifo"
	}
	return fmt.Sprintf("type %q", t)
}
