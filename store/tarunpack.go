package store

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// UnpackOptions tune Unpack.
type UnpackOptions struct {
	// Overlay recreates whiteouts in kernel overlayfs form, for unpacking into an
	// overlay upper dir: ".wh.<name>" files become 0/0 character devices and
	// ".wh..wh..opq" markers become the opaque xattr on their directory (trusted.* and
	// user.*, whichever we may set). When the kernel refuses (mknod or xattrs not
	// permitted) the ".wh." file is kept, the form fuse-overlayfs understands.
	Overlay bool
}

// maxNameLen bounds entry names and link targets (PATH_MAX).
const maxNameLen = 4096

// Unpack extracts a tar stream into target, creating it if needed. It reads r once, in
// order, never holding an entry in memory. It refuses (ErrUnsafeArchive) absolute
// names, ".." components, parents that are symlinks or not directories (so nothing is
// ever written through a link), hard links to anything outside target, device nodes
// other than overlay whiteouts, FIFOs, and oversized names; a malformed archive fails
// with ErrCorrupt. Every directory is walked with openat(O_NOFOLLOW), so a symlink
// swapped in while unpacking cannot redirect a write either.
//
// Regular files get the header's permission bits, setuid and setgid included;
// directories are created 0700 and chmod-ed to their header mode at the end, deepest
// first, so read-only directories do not block their own contents. Ownership and mtimes
// are not restored. A partially unpacked target is left on error; callers unpack into
// staging and rename. Because set-id bits survive, target must lie inside a directory
// only its owner can enter (the store's staging and env/<id> are 0700).
func Unpack(ctx context.Context, r io.Reader, target string, opts UnpackOptions) error {
	return wrap("unpack into "+target, unpack(ctx, r, target, opts))
}

func unpack(ctx context.Context, r io.Reader, target string, opts UnpackOptions) error {
	if err := os.MkdirAll(target, 0o755); err != nil {
		return err
	}
	rootFD, err := unix.Open(target, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: target, Err: err}
	}
	u := &unpacker{root: rootFD, opts: opts, buf: make([]byte, copyBufSize), dirModes: map[string]uint32{}}
	defer u.close()
	cr := &countingReader{r: r}
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, tar.ErrHeader) || errors.Is(err, tar.ErrFieldTooLong) || errors.Is(err, tar.ErrInsecurePath) {
				return fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return err
		}
		if err := u.entry(ctx, hdr, tr); err != nil {
			return fmt.Errorf("entry %q: %w", clipName(hdr.Name), err)
		}
	}
	if cr.n%blockSize != 0 {
		return fmt.Errorf("%w: archive truncated inside a block (%d bytes)", ErrCorrupt, cr.n)
	}
	return u.finishDirs()
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type unpacker struct {
	root     int
	opts     UnpackOptions
	buf      []byte
	dirModes map[string]uint32 // relative dir -> permission bits, applied at the end
	cacheDir string            // relative path of cacheFD, the last directory opened
	cacheFD  int               // valid when hasCache
	hasCache bool
}

func (u *unpacker) close() {
	u.dropCache()
	_ = unix.Close(u.root)
}

func (u *unpacker) dropCache() {
	if u.hasCache {
		_ = unix.Close(u.cacheFD)
		u.hasCache = false
	}
}

func unsafeErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsafeArchive, fmt.Sprintf(format, args...))
}

// cleanName turns an archive name into a relative path of plain components, or "" for
// the target itself.
func cleanName(name string) (string, error) {
	if len(name) > maxNameLen {
		return "", unsafeErr("name longer than %d bytes", maxNameLen)
	}
	if strings.HasPrefix(name, "/") {
		return "", unsafeErr("absolute path")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", unsafeErr("NUL in name")
	}
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", unsafeErr("path traversal (..)")
		}
		parts = append(parts, c)
	}
	return strings.Join(parts, "/"), nil
}

// openDir returns a descriptor for the relative directory rel (creating missing
// components 0755), walking one component at a time with O_NOFOLLOW. The caller must
// not close it.
func (u *unpacker) openDir(rel string) (int, error) {
	if rel == "" || rel == "." {
		return u.root, nil
	}
	if u.hasCache && u.cacheDir == rel {
		return u.cacheFD, nil
	}
	u.dropCache()
	fd, err := unix.Dup(u.root)
	if err != nil {
		return -1, err
	}
	for _, c := range strings.Split(rel, "/") {
		next, err := unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err == unix.ENOENT {
			if err := unix.Mkdirat(fd, c, 0o755); err != nil && err != unix.EEXIST {
				_ = unix.Close(fd)
				return -1, fmt.Errorf("mkdir %s: %w", c, err)
			}
			next, err = unix.Openat(fd, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		}
		_ = unix.Close(fd)
		if err == unix.ELOOP || err == unix.ENOTDIR {
			return -1, unsafeErr("parent %q is a symlink or not a directory", rel)
		}
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", rel, err)
		}
		fd = next
	}
	u.cacheDir, u.cacheFD, u.hasCache = rel, fd, true
	return fd, nil
}

// clearSlot removes a non-directory at parent/base so a fresh entry can be created
// there (never writing through an existing file or link).
func clearSlot(parent int, base string) error {
	err := unix.Unlinkat(parent, base, 0)
	switch err {
	case nil, unix.ENOENT:
		return nil
	case unix.EISDIR:
		return unsafeErr("%q exists as a directory", base)
	}
	return err
}

func (u *unpacker) entry(ctx context.Context, hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	for k := range hdr.PAXRecords {
		// A sparse file can expand to any size from a few bytes of input.
		if strings.HasPrefix(k, "GNU.sparse.") {
			return unsafeErr("sparse files are not supported")
		}
	}
	if rel == "" {
		return nil // the target itself
	}
	dir, base := path.Split(rel)
	dir = strings.TrimSuffix(dir, "/")
	if hdr.Typeflag != tar.TypeDir {
		if _, isDir := u.dirModes[rel]; isDir {
			return unsafeErr("%q is already a directory", rel)
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		return u.mkdir(dir, base, rel, uint32(hdr.Mode)&0o7777)
	case tar.TypeReg, tar.TypeRegA, tar.TypeCont:
		if u.opts.Overlay && strings.HasPrefix(base, WhiteoutPrefix) {
			if done, err := u.overlayMarker(dir, base); done || err != nil {
				return err
			}
		}
		return u.file(ctx, dir, base, uint32(hdr.Mode)&0o7777, r)
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return fmt.Errorf("%w: empty symlink target", ErrCorrupt)
		}
		if len(hdr.Linkname) > maxNameLen {
			return unsafeErr("symlink target longer than %d bytes", maxNameLen)
		}
		parent, err := u.openDir(dir)
		if err != nil {
			return err
		}
		if err := clearSlot(parent, base); err != nil {
			return err
		}
		return unix.Symlinkat(hdr.Linkname, parent, base)
	case tar.TypeLink:
		return u.hardlink(dir, base, hdr.Linkname)
	case tar.TypeChar:
		if hdr.Devmajor == 0 && hdr.Devminor == 0 {
			return u.whiteout(ctx, dir, base)
		}
		return unsafeErr("character device %d:%d", hdr.Devmajor, hdr.Devminor)
	case tar.TypeBlock:
		return unsafeErr("block device")
	case tar.TypeFifo:
		return unsafeErr("FIFO")
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return unsafeErr("unsupported entry type %q", hdr.Typeflag)
	}
}

func (u *unpacker) mkdir(dir, base, rel string, mode uint32) error {
	parent, err := u.openDir(dir)
	if err != nil {
		return err
	}
	if err := unix.Mkdirat(parent, base, 0o700); err != nil && err != unix.EEXIST {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(parent, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unsafeErr("%q exists and is not a directory", rel)
	}
	u.dirModes[rel] = mode
	return nil
}

func (u *unpacker) file(ctx context.Context, dir, base string, mode uint32, r io.Reader) error {
	parent, err := u.openDir(dir)
	if err != nil {
		return err
	}
	if err := clearSlot(parent, base); err != nil {
		return err
	}
	fd, err := unix.Openat(parent, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), base)
	defer f.Close()
	if _, err := io.CopyBuffer(struct{ io.Writer }{f}, ctxReader{ctx, r}, u.buf); err != nil {
		return err
	}
	if err := f.Chmod(os.FileMode(mode & 0o777)); err != nil {
		return err
	}
	if mode&0o7000 != 0 {
		if err := unix.Fchmod(fd, mode); err != nil {
			return err
		}
	}
	return f.Close()
}

func (u *unpacker) hardlink(dir, base, linkname string) error {
	trel, err := cleanName(linkname)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if trel == "" {
		return unsafeErr("hard link to the target directory")
	}
	tdir, tbase := path.Split(trel)
	tdir = strings.TrimSuffix(tdir, "/")
	// Open the link's source parent on its own descriptor: openDir caches one.
	tparent, err := u.openDir(tdir)
	if err != nil {
		return err
	}
	tfd, err := unix.Dup(tparent)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	parent, err := u.openDir(dir)
	if err != nil {
		return err
	}
	if err := clearSlot(parent, base); err != nil {
		return err
	}
	// No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
	return unix.Linkat(tfd, tbase, parent, base, 0)
}

// overlayMarker handles ".wh." names in overlay mode. It reports done when the entry
// was turned into its kernel form.
func (u *unpacker) overlayMarker(dir, base string) (bool, error) {
	parent, err := u.openDir(dir)
	if err != nil {
		return false, err
	}
	if base == OpaqueMarker {
		ok := false
		for _, x := range opaqueXattrs {
			if unix.Fsetxattr(parent, x, []byte("y"), 0) == nil {
				ok = true
			}
		}
		return ok, nil
	}
	name := strings.TrimPrefix(base, WhiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return false, nil
	}
	if err := clearSlot(parent, name); err != nil {
		return false, err
	}
	if err := unix.Mknodat(parent, name, unix.S_IFCHR, 0); err != nil {
		if err == unix.EPERM || err == unix.EACCES {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// whiteout handles a 0/0 character device entry from a foreign archive.
func (u *unpacker) whiteout(ctx context.Context, dir, base string) error {
	if u.opts.Overlay {
		if done, err := u.overlayMarker(dir, WhiteoutPrefix+base); done || err != nil {
			return err
		}
	}
	return u.file(ctx, dir, WhiteoutPrefix+base, 0o644, strings.NewReader(""))
}

// finishDirs applies directory modes, deepest (bytewise greatest) first.
func (u *unpacker) finishDirs() error {
	u.dropCache()
	rels := make([]string, 0, len(u.dirModes))
	for rel := range u.dirModes {
		rels = append(rels, rel)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(rels)))
	for _, rel := range rels {
		dir, base := path.Split(rel)
		parent, err := u.openDir(strings.TrimSuffix(dir, "/"))
		if err != nil {
			return err
		}
		fd, err := unix.Openat(parent, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
		err = unix.Fchmod(fd, u.dirModes[rel])
		_ = unix.Close(fd)
		if err != nil {
			return fmt.Errorf("chmod %s: %w", rel, err)
		}
	}
	return nil
}

func clipName(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}
