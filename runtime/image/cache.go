package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/karapace/karapace/schema"
)

// File names inside <store>/images/<key>/.
const (
	RootfsDir  = "rootfs"
	DigestFile = "rootfs.blake3"
	RecordFile = "image.json"
)

// Record describes a cached image; it is stored as image.json beside the rootfs.
type Record struct {
	// Name is the image name as the manifest gave it.
	Name string `json:"name"`
	// Source is the tarball's URL or local path.
	Source string `json:"source"`
	// Digest is the BLAKE3 of the tarball bytes: the image's identity.
	Digest schema.Digest `json:"digest"`
	// Size is the tarball's size in bytes.
	Size        int64       `json:"size"`
	Compression Compression `json:"compression"`
	// Arch is the server architecture an alias was fetched for.
	Arch string `json:"arch,omitempty"`
	// TreeDigest is TreeDigest of the extracted rootfs, checked by Verify.
	TreeDigest schema.Digest `json:"tree_digest"`
	FetchedAt  time.Time     `json:"fetched_at"`
}

// Image is a base image ready to use.
type Image struct {
	Ref Ref
	// Key is Ref.Key: the directory name under <store>/images.
	Key string
	// Dir is <store>/images/<key>; Rootfs is its rootfs directory (read-only lower layer).
	Dir, Rootfs string
	// Digest is the tarball digest (Record.Digest); its String form goes in the lock file.
	Digest schema.Digest
	Record Record
	// Cached is true when nothing had to be fetched or extracted.
	Cached bool
}

// Phase names a step reported to a Progress callback.
type Phase string

const (
	PhaseCached   Phase = "cached"   // using the cache, nothing to fetch
	PhaseResolve  Phase = "resolve"  // finding the newest build on the server
	PhaseDownload Phase = "download" // Done and Total are bytes; Total is -1 when unknown
	PhaseExtract  Phase = "extract"
	PhaseDigest   Phase = "digest" // hashing the extracted tree
	PhaseReady    Phase = "ready"
)

// Event is one progress report. A PhaseDownload event with an empty Message is a byte
// count (Done of Total); the other events carry a line for people.
type Event struct {
	Phase       Phase
	Message     string
	Done, Total int64
}

// EnsureOptions tunes Ensure.
type EnsureOptions struct {
	// Offline forbids the network: only cached images (and local tarballs) can be used.
	Offline bool
	// Verify re-hashes the cached tree against its recorded digest before returning it.
	Verify bool
	// Progress, when set, receives progress events (the CLI draws a bar from them).
	Progress func(Event)
	// Refresh fetches a cached alias or URL again: an alias when the server's newest
	// build is not the cached one, a URL always. The cached image is replaced only once
	// the new one is complete.
	Refresh bool
}

// Cache is the image cache of one store.
type Cache struct {
	dir          string // <store>/images
	server, arch string
	client       *http.Client
	log          *slog.Logger
	attempts     int
	retryDelay   time.Duration
	stallTimeout time.Duration
	keepSetID    bool
	xzPath       string
	now          func() time.Time
}

// Option configures a Cache.
type Option func(*Cache)

// WithServer sets the image server base URL (default: $KARAPACE_IMAGE_SERVER, else
// DefaultServer).
func WithServer(base string) Option {
	return func(c *Cache) { c.server = strings.TrimRight(base, "/") }
}

// WithArch sets the server architecture (default: HostArch()).
func WithArch(arch string) Option { return func(c *Cache) { c.arch = arch } }

// WithHTTPClient replaces the HTTP client.
func WithHTTPClient(hc *http.Client) Option { return func(c *Cache) { c.client = hc } }

// WithLogger sets the logger for debug messages (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Cache) { c.log = l } }

// WithRetry sets how many times a download is attempted and the first back-off delay
// (doubled on each retry). Defaults: 5 attempts, 1 s.
func WithRetry(attempts int, delay time.Duration) Option {
	return func(c *Cache) { c.attempts, c.retryDelay = max(attempts, 1), delay }
}

// WithStallTimeout sets how long a download may receive nothing before it is retried
// (default 60 s).
func WithStallTimeout(d time.Duration) Option { return func(c *Cache) { c.stallTimeout = d } }

// WithXz sets the xz program used to decompress xz tarballs (default: xz on PATH);
// "" selects the pure Go decoder.
func WithXz(path string) Option { return func(c *Cache) { c.xzPath = path } }

// NewCache returns the image cache of the store at storeRoot. It reads
// KARAPACE_IMAGE_SERVER once, here, unless WithServer is given.
func NewCache(storeRoot string, opts ...Option) *Cache {
	server := os.Getenv(ServerEnv)
	if server == "" {
		server = DefaultServer
	}
	transport := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 60 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	xzPath, _ := exec.LookPath("xz")
	c := &Cache{
		xzPath:       xzPath,
		dir:          filepath.Join(storeRoot, "images"),
		server:       strings.TrimRight(server, "/"),
		arch:         HostArch(),
		client:       &http.Client{Transport: transport},
		log:          slog.New(slog.DiscardHandler),
		attempts:     5,
		retryDelay:   time.Second,
		stallTimeout: 60 * time.Second,
		keepSetID:    isRealRoot(),
		now:          time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Server returns the image server base URL in use.
func (c *Cache) Server() string { return c.server }

// Dir returns <store>/images/<key>.
func (c *Cache) Dir(key string) string { return filepath.Join(c.dir, key) }

// Pin resolves name to the URL (or local path) of the exact tarball Ensure would fetch
// now: for an alias, the newest build on the server. URLs and local paths pin to
// themselves.
func (c *Cache) Pin(ctx context.Context, name string) (string, error) {
	ref, err := Resolve(name)
	if err != nil {
		return "", err
	}
	switch ref.Kind {
	case KindURL:
		return ref.URL, nil
	case KindLocal:
		return ref.Name, nil
	}
	return c.newestBuildURL(ctx, ref)
}

// Ensure makes ref available in the cache and returns it. A cached image is used as is
// (a local tarball is re-hashed, and re-extracted if it changed). Otherwise the tarball
// is downloaded (or read), extracted into a temporary directory and renamed into place,
// so a failure or a crash never leaves a half-made image behind.
func (c *Cache) Ensure(ctx context.Context, ref Ref, opts EnsureOptions) (Image, error) {
	report := func(e Event) {
		if opts.Progress != nil {
			opts.Progress(e)
		}
	}
	if !validKey(ref.Key) {
		return Image{}, fmt.Errorf("%w: invalid cache key %q", ErrImageNotFound, ref.Key)
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return Image{}, fmt.Errorf("image cache: %w", err)
	}
	unlock, err := c.lock(ctx, ref.Key)
	if err != nil {
		return Image{}, err
	}
	defer unlock()

	img := Image{Ref: ref, Key: ref.Key, Dir: c.Dir(ref.Key), Rootfs: filepath.Join(c.Dir(ref.Key), RootfsDir)}
	rec, cached := c.cachedRecord(ref.Key)
	var localDigest schema.Digest
	if cached && ref.Kind == KindLocal {
		// A local tarball can change under the same path: the cache holds only if the
		// bytes are the same.
		if localDigest, err = hashLocal(ref.Path); err != nil {
			return Image{}, err
		}
		cached = localDigest == rec.Digest
	}
	if cached && opts.Refresh && ref.Kind != KindLocal {
		cached, err = c.upToDate(ctx, ref, rec, report)
		if err != nil {
			return Image{}, err
		}
	}
	if cached {
		if opts.Verify {
			if err := c.verify(ctx, ref.Key, rec); err != nil {
				return Image{}, err
			}
		}
		report(Event{Phase: PhaseCached, Message: "using cached image " + ref.Display})
		img.Digest, img.Record, img.Cached = rec.Digest, rec, true
		return img, nil
	}
	if opts.Offline && ref.Kind != KindLocal {
		return Image{}, fmt.Errorf("%w: base image %s is not cached", ErrOffline, ref.Display)
	}
	rec, err = c.fetch(ctx, ref, report)
	if err != nil {
		return Image{}, err
	}
	report(Event{Phase: PhaseReady, Message: "image " + ref.Display + " ready"})
	img.Digest, img.Record = rec.Digest, rec
	return img, nil
}

// upToDate reports whether the cached record of an alias still names the server's
// newest build; a URL is never up to date, so that a refresh downloads it again.
func (c *Cache) upToDate(ctx context.Context, ref Ref, rec Record, report func(Event)) (bool, error) {
	if ref.Kind != KindAlias {
		return false, nil
	}
	report(Event{Phase: PhaseResolve, Message: "resolving image URL for " + ref.Display})
	src, err := c.newestBuildURL(ctx, ref)
	if err != nil {
		return false, err
	}
	return src == rec.Source && rec.Arch == c.arch, nil
}

// fetch downloads (or reads) and extracts ref; the caller holds the key's lock.
func (c *Cache) fetch(ctx context.Context, ref Ref, report func(Event)) (Record, error) {
	c.removeStale(ref.Key)
	tmp, err := os.MkdirTemp(c.dir, ".tmp-"+ref.Key+"-")
	if err != nil {
		return Record{}, fmt.Errorf("image cache: %w", err)
	}
	done := false
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()

	rec := Record{Name: ref.Name}
	var tarball string
	switch ref.Kind {
	case KindLocal:
		tarball, rec.Source = ref.Path, ref.Path
		if rec.Digest, rec.Size, err = hashLocalSize(ref.Path); err != nil {
			return Record{}, err
		}
	default:
		src := ref.URL
		if ref.Kind == KindAlias {
			report(Event{Phase: PhaseResolve, Message: "resolving image URL for " + ref.Display})
			if src, err = c.newestBuildURL(ctx, ref); err != nil {
				return Record{}, err
			}
			rec.Arch = c.arch
		}
		rec.Source = src
		report(Event{Phase: PhaseDownload, Message: "downloading " + src, Total: -1})
		tarball = filepath.Join(tmp, "rootfs.download")
		f, err := os.OpenFile(tarball, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return Record{}, fmt.Errorf("image cache: %w", err)
		}
		rec.Digest, rec.Size, err = c.download(ctx, src, f, func(d, t int64) {
			report(Event{Phase: PhaseDownload, Done: d, Total: t})
		})
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			return Record{}, err
		}
	}

	report(Event{Phase: PhaseExtract, Message: "extracting " + ref.Display})
	rootfs := filepath.Join(tmp, RootfsDir)
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		return Record{}, fmt.Errorf("image cache: %w", err)
	}
	in, err := os.Open(tarball)
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", ref.Display, err)
	}
	st, err := extract(ctx, in, rootfs, extractOptions{keepSetID: c.keepSetID, xzPath: c.xzPath, log: c.log})
	in.Close()
	if err != nil {
		return Record{}, fmt.Errorf("extract %s: %w", rec.Source, err)
	}
	c.log.Debug("image extracted", "image", ref.Display, "files", st.Files, "dirs", st.Dirs, "symlinks", st.Symlinks,
		"hardlinks", st.Hardlinks, "skipped_special", st.SkippedSpecial, "dropped_setid", st.DroppedSetID)
	rec.Compression = st.Compression
	if ref.Kind != KindLocal {
		if err := os.Remove(tarball); err != nil {
			return Record{}, fmt.Errorf("image cache: %w", err)
		}
	}

	report(Event{Phase: PhaseDigest, Message: "computing image digest"})
	if rec.TreeDigest, err = TreeDigest(ctx, rootfs); err != nil {
		return Record{}, err
	}
	rec.FetchedAt = c.now().UTC().Truncate(time.Second)
	if err := writeRecord(tmp, rec); err != nil {
		return Record{}, err
	}
	if err := syncFS(tmp); err != nil {
		return Record{}, fmt.Errorf("image cache: sync: %w", err)
	}
	if err := c.install(tmp, ref.Key); err != nil {
		return Record{}, err
	}
	done = true
	return rec, nil
}

// install renames the finished directory tmp to <key>, moving any previous one aside
// first and deleting it afterwards.
func (c *Cache) install(tmp, key string) error {
	final := c.Dir(key)
	var old string
	if _, err := os.Lstat(final); err == nil {
		old = tmp + ".old"
		if err := os.Rename(final, old); err != nil {
			return fmt.Errorf("image cache: %w", err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if err := syncDir(c.dir); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			c.log.Debug("image cache: removing replaced image", "dir", old, "error", err)
		}
	}
	return nil
}

// removeStale deletes work directories left by a crashed Ensure of key; the caller
// holds the key's lock, so no live Ensure owns them.
func (c *Cache) removeStale(key string) {
	matches, _ := filepath.Glob(filepath.Join(c.dir, ".tmp-"+key+"-*"))
	for _, m := range matches {
		c.log.Debug("image cache: removing stale work directory", "dir", m)
		os.RemoveAll(m)
	}
}

// cachedRecord returns the record of a complete cached image.
func (c *Cache) cachedRecord(key string) (Record, bool) {
	rec, err := c.Record(key)
	if err != nil {
		return Record{}, false
	}
	if fi, err := os.Stat(filepath.Join(c.Dir(key), RootfsDir)); err != nil || !fi.IsDir() {
		return Record{}, false
	}
	return rec, true
}

// Record reads the record of a cached image.
func (c *Cache) Record(key string) (Record, error) {
	if !validKey(key) {
		return Record{}, fmt.Errorf("%w: invalid cache key %q", ErrImageNotFound, key)
	}
	b, err := os.ReadFile(filepath.Join(c.Dir(key), RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, fmt.Errorf("%w: %s is not cached", ErrImageNotFound, key)
	}
	if err != nil {
		return Record{}, fmt.Errorf("image %s: %w", key, err)
	}
	var rec Record
	if err := json.Unmarshal(b, &rec); err != nil {
		return Record{}, fmt.Errorf("%w: %s: %s: %v", ErrCorrupt, key, RecordFile, err)
	}
	return rec, nil
}

// Keys lists the cached images (directories with a record), sorted.
func (c *Cache) Keys() ([]string, error) {
	entries, err := os.ReadDir(c.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image cache: %w", err)
	}
	var keys []string
	for _, e := range entries {
		if !e.IsDir() || !validKey(e.Name()) {
			continue
		}
		if _, err := os.Stat(filepath.Join(c.dir, e.Name(), RecordFile)); err == nil {
			keys = append(keys, e.Name())
		}
	}
	sort.Strings(keys)
	return keys, nil
}

// Verify re-hashes a cached image's tree and checks it, and rootfs.blake3, against the
// record. A mismatch wraps ErrCorrupt.
func (c *Cache) Verify(ctx context.Context, key string) error {
	rec, err := c.Record(key)
	if err != nil {
		return err
	}
	return c.verify(ctx, key, rec)
}

func (c *Cache) verify(ctx context.Context, key string, rec Record) error {
	b, err := os.ReadFile(filepath.Join(c.Dir(key), DigestFile))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	if got := strings.TrimSpace(string(b)); got != rec.Digest.String() {
		return fmt.Errorf("%w: %s: %s says %s, record says %s", ErrCorrupt, key, DigestFile, got, rec.Digest)
	}
	tree, err := TreeDigest(ctx, filepath.Join(c.Dir(key), RootfsDir))
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
	}
	if tree != rec.TreeDigest {
		return fmt.Errorf("%w: %s: rootfs tree digest %s, recorded %s (files were changed, added or removed)", ErrCorrupt, key, tree, rec.TreeDigest)
	}
	return nil
}

// writeRecord writes rootfs.blake3 and image.json into dir, durably.
func writeRecord(dir string, rec Record) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(dir, DigestFile), []byte(rec.Digest.String())); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if err := writeFileSync(filepath.Join(dir, RecordFile), append(b, '\n')); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	return nil
}

func writeFileSync(p string, b []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func hashLocal(p string) (schema.Digest, error) {
	d, _, err := hashLocalSize(p)
	return d, err
}

func hashLocalSize(p string) (schema.Digest, int64, error) {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return schema.Digest{}, 0, fmt.Errorf("%w: local image %s does not exist", ErrImageNotFound, p)
	}
	if err != nil {
		return schema.Digest{}, 0, fmt.Errorf("local image: %w", err)
	}
	defer f.Close()
	d, n, err := schema.HashReader(f)
	if err != nil {
		return schema.Digest{}, 0, fmt.Errorf("local image %s: %w", p, err)
	}
	return d, n, nil
}

// lock takes the key's flock, waiting until it is free or ctx ends.
func (c *Cache) lock(ctx context.Context, key string) (func(), error) {
	p := filepath.Join(c.dir, ".lock-"+key)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("image cache lock: %w", err)
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, fmt.Errorf("image cache lock %s: %w", p, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for image cache lock %s: %w", p, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func syncDir(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// syncFS flushes the whole file system holding p: one call instead of an fsync per
// extracted file.
func syncFS(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// isRealRoot reports whether we run as uid 0 of the initial user namespace: the only
// case where setuid/setgid bits in an image mean what they say.
func isRealRoot() bool {
	if os.Geteuid() != 0 {
		return false
	}
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil {
		return false
	}
	f := strings.Fields(string(b))
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}

// Remove deletes a cached image (the next Ensure fetches it again). Removing an image
// that is not cached is not an error.
func (c *Cache) Remove(ctx context.Context, key string) error {
	if !validKey(key) {
		return fmt.Errorf("%w: invalid cache key %q", ErrImageNotFound, key)
	}
	if _, err := os.Stat(c.dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	unlock, err := c.lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	final := c.Dir(key)
	if _, err := os.Lstat(final); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Rename first so a crash mid-delete never leaves a half image under the key.
	trash, err := os.MkdirTemp(c.dir, ".tmp-"+key+"-")
	if err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	if err := os.Rename(final, filepath.Join(trash, "old")); err != nil {
		os.Remove(trash)
		return fmt.Errorf("image cache: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("image cache: %w", err)
	}
	return nil
}
