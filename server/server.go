package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Default request size limits.
const (
	DefaultMaxObjectBytes   int64 = 64 << 30
	DefaultMaxLayerBytes    int64 = 64 << 20
	DefaultMaxMetadataBytes int64 = 1 << 20
	DefaultMaxRegistryBytes int64 = 64 << 20
)

// Options configures a Server. DataDir is required; zero limits take the defaults.
type Options struct {
	DataDir          string
	Token            string // when set, every request needs "Authorization: Bearer <Token>"
	Logger           *slog.Logger
	MaxObjectBytes   int64
	MaxLayerBytes    int64
	MaxMetadataBytes int64
	MaxRegistryBytes int64
	// MaxUploads bounds the PUTs in progress at once; one more is answered 503 with
	// Retry-After (DefaultMaxUploads when 0).
	MaxUploads int
	// MinUploadRate is the slowest request body accepted, in bytes per second averaged
	// over UploadRateWindow (see bodyLimits); a slower one is cut off with 408 and its
	// temp file removed. 0 takes DefaultMinUploadRate, a negative value turns the check
	// off. UploadRateWindow 0 takes DefaultUploadRateWindow.
	MinUploadRate    int64
	UploadRateWindow time.Duration
	// UploadTimeout, when positive, bounds the time from a request's headers to the end
	// of its body, whatever the rate (408 when over). 0 means no such bound.
	UploadTimeout time.Duration
}

// Server is the reference remote store. Its data directory has the original server's
// layout:
//
//	<data>/blobs/Object/<key>     objects (blake3 of the bytes = key)
//	<data>/blobs/Layer/<key>      layer manifests (blake3 of the bytes = key)
//	<data>/blobs/Metadata/<id>    environment metadata
//	<data>/registry.json          the registry document
//
// Every write is atomic (temp file in the same directory, fsync, rename, fsync of the
// directory); dot files are temp files and never listed or served.
type Server struct {
	dir     string
	token   []byte
	log     *slog.Logger
	limits  [3]int64
	maxReg  int64
	regLock sync.Mutex // serializes registry writes (reads are of whole atomic files)
	uploads slots      // PUTs in progress
	body    bodyLimits // deadlines of every request body
}

// ErrSetup is wrapped by New's errors: the data directory cannot be used.
var ErrSetup = errors.New("server setup failed")

// New creates the data directory layout if needed and returns a Server.
func New(opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, fmt.Errorf("%w: no data directory", ErrSetup)
	}
	dir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("%w: data directory %s: %w", ErrSetup, opts.DataDir, err)
	}
	for _, k := range remote.Kinds {
		if err := os.MkdirAll(filepath.Join(dir, "blobs", k.String()), 0o755); err != nil {
			return nil, fmt.Errorf("%w: create data directory %s: %w", ErrSetup, dir, err)
		}
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxUploads < 0 || opts.UploadRateWindow < 0 || opts.UploadTimeout < 0 {
		return nil, fmt.Errorf("%w: negative upload limit", ErrSetup)
	}
	rate := opts.MinUploadRate
	if rate == 0 {
		rate = DefaultMinUploadRate
	}
	window := opts.UploadRateWindow
	if window == 0 {
		window = DefaultUploadRateWindow
	}
	s := &Server{dir: dir, log: log, maxReg: or(opts.MaxRegistryBytes, DefaultMaxRegistryBytes),
		uploads: make(slots, or(int64(opts.MaxUploads), DefaultMaxUploads)),
		body:    newBodyLimits(rate, window, opts.UploadTimeout)}
	if opts.Token != "" {
		s.token = []byte(opts.Token)
	}
	s.sweepTemps(dir, time.Now())
	s.limits[remote.Object] = or(opts.MaxObjectBytes, DefaultMaxObjectBytes)
	s.limits[remote.Layer] = or(opts.MaxLayerBytes, DefaultMaxLayerBytes)
	s.limits[remote.Metadata] = or(opts.MaxMetadataBytes, DefaultMaxMetadataBytes)
	return s, nil
}

func or(v, def int64) int64 {
	if v > 0 {
		return v
	}
	return def
}

// staleTemp is how long a temp file must have gone unmodified before New takes it for
// the leftover of a server that died mid-upload (a live upload writes far more often:
// see MinUploadRate). A request that fails removes its own temp file at once.
const staleTemp = time.Hour

// sweepTemps removes stale temp files (".tmp-*") from the data directory and the blob
// directories.
func (s *Server) sweepTemps(dir string, now time.Time) {
	dirs := []string{dir}
	for _, k := range remote.Kinds {
		dirs = append(dirs, filepath.Join(dir, "blobs", k.String()))
	}
	n := 0
	for _, d := range dirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if !strings.HasPrefix(e.Name(), ".tmp-") || !e.Type().IsRegular() {
				continue
			}
			if fi, err := e.Info(); err == nil && now.Sub(fi.ModTime()) > staleTemp && os.Remove(filepath.Join(d, e.Name())) == nil {
				n++
			}
		}
	}
	if n > 0 {
		s.log.Info("removed stale temp files", "count", n)
	}
}

// DataDir returns the absolute data directory.
func (s *Server) DataDir() string { return s.dir }

// Error classes of request handling, mapped to statuses in exactly one place (status).
var (
	errBadRequest = errors.New("bad request")
	errNotFound   = errors.New("not found")
	errMethod     = errors.New("method not allowed")
	errTooLarge   = errors.New("request body too large")
	errConflict   = errors.New("precondition failed")
	errAuth       = errors.New("unauthorized")
)

func status(err error) int {
	var maxErr *http.MaxBytesError
	switch {
	case errors.Is(err, errAuth):
		return http.StatusUnauthorized
	case errors.Is(err, errNotFound), errors.Is(err, fs.ErrNotExist):
		return http.StatusNotFound
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errTooLarge), errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errConflict):
		return http.StatusPreconditionFailed
	case errors.Is(err, errTooSlow):
		return http.StatusRequestTimeout
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable
	case errors.Is(err, errBadRequest), errors.Is(err, remote.ErrIntegrity),
		errors.Is(err, remote.ErrInvalidKey), errors.Is(err, remote.ErrProtocol):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

// errorClass names the class of err for the client (remote.ErrorClassHeader).
func errorClass(err error) string {
	switch {
	case errors.Is(err, remote.ErrIntegrity):
		return "integrity"
	case errors.Is(err, remote.ErrInvalidKey):
		return "invalid-key"
	case errors.Is(err, errConflict):
		return "conflict"
	}
	return ""
}

// route is a parsed request target.
type route struct {
	registry bool
	health   bool
	kind     remote.Kind
	key      string // "" for a list
	list     bool
}

// parseRoute parses the escaped request path. It accepts the client's routes
// (/{objects|layers|metadata}/{key}, /{kind}/ and /{kind} to list), the original
// server's canonical ones (/blobs/{Object|Layer|Metadata}/{key}, /blobs/{Kind}),
// /registry and /health. Keys must be 64 lowercase hex characters: nothing encoded, no
// slashes, no dots, so no request names a path outside the data directory.
func parseRoute(path string) (route, error) {
	switch path {
	case "/registry":
		return route{registry: true}, nil
	case "/health":
		return route{health: true}, nil
	}
	p, ok := strings.CutPrefix(path, "/")
	if !ok {
		return route{}, fmt.Errorf("%w: %q", errNotFound, clip(path))
	}
	var kind remote.Kind
	if rest, ok := strings.CutPrefix(p, "blobs/"); ok {
		name, key, _ := strings.Cut(rest, "/")
		if kind, ok = remote.KindFromName(name); !ok {
			return route{}, fmt.Errorf("%w: %q", errNotFound, clip(path))
		}
		p = key
	} else {
		name, key, _ := strings.Cut(p, "/")
		if kind, ok = remote.KindFromRoute(name); !ok {
			return route{}, fmt.Errorf("%w: %q", errNotFound, clip(path))
		}
		p = key
	}
	if p == "" {
		return route{kind: kind, list: true}, nil
	}
	if _, err := remote.ParseKey(p); err != nil {
		return route{}, fmt.Errorf("%w: %w", errBadRequest, err)
	}
	return route{kind: kind, key: p}, nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	w.Header().Set(remote.VerifiesHeader, "blake3")
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody && !s.body.off() {
		// Every body, not only an upload's: what a handler leaves unread the server
		// discards after it, and that read must be bounded too.
		r.Body = newDeadlineBody(w, r.Body, s.body, start)
	}
	err := s.serve(rec, r)
	if err != nil {
		code := status(err)
		msg := err.Error()
		if code == http.StatusInternalServerError {
			msg = "internal error"
		}
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="karapace"`)
		}
		if c := errorClass(err); c != "" {
			w.Header().Set(remote.ErrorClassHeader, c)
		}
		if code == http.StatusMethodNotAllowed {
			w.Header().Set("Allow", "GET, HEAD, PUT")
		}
		if code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(RetryAfter))
		}
		if code == http.StatusRequestTimeout {
			w.Header().Set("Connection", "close")
		}
		if !rec.wrote {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			rec.WriteHeader(code)
			if r.Method != http.MethodHead {
				_, _ = io.WriteString(rec, msg+"\n")
			}
		}
	}
	level := slog.LevelInfo
	if rec.status >= 500 {
		level = slog.LevelError
	} else if rec.status >= 400 {
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", clip(r.URL.EscapedPath())),
		slog.Int("status", rec.status),
		slog.Int64("bytes_out", rec.n),
		slog.Int64("bytes_in", r.ContentLength),
		slog.Duration("duration", time.Since(start)),
		slog.String("remote", r.RemoteAddr),
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	s.log.LogAttrs(r.Context(), level, "request", attrs...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) error {
	if err := s.authorize(r); err != nil {
		return err
	}
	if v := r.Header.Get(remote.ProtocolHeader); v != "" && v != strconv.Itoa(remote.ProtocolVersion) {
		return fmt.Errorf("%w: unsupported protocol version %q (this server speaks %d)", errBadRequest, clip(v), remote.ProtocolVersion)
	}
	rt, err := parseRoute(r.URL.EscapedPath())
	if err != nil {
		return err
	}
	if r.Method == http.MethodPut && (rt.registry || rt.key != "") {
		if !s.uploads.tryAcquire() {
			return fmt.Errorf("%w (limit %d); retry later", errBusy, cap(s.uploads))
		}
		defer s.uploads.release()
	}
	switch {
	case rt.health:
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			return errMethod
		}
		w.Header().Set("Content-Type", "application/json")
		if r.Method == http.MethodGet {
			_, _ = io.WriteString(w, `{"status":"ok"}`)
		}
		return nil
	case rt.registry:
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			return s.getRegistry(w, r)
		case http.MethodPut:
			return s.putRegistry(w, r)
		}
		return errMethod
	case rt.list:
		if r.Method != http.MethodGet {
			return errMethod
		}
		return s.list(w, rt.kind)
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return s.getBlob(w, r, rt.kind, rt.key)
	case http.MethodPut:
		return s.putBlob(w, r, rt.kind, rt.key)
	}
	return errMethod
}

// authorize checks the bearer token in constant time (both sides hashed to equal length
// first, so not even the token's length leaks).
func (s *Server) authorize(r *http.Request) error {
	if s.token == nil {
		return nil
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a, b := schema.Sum([]byte(got)), schema.Sum(s.token)
	if !ok || subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return fmt.Errorf("%w: missing or wrong bearer token", errAuth)
	}
	return nil
}

func (s *Server) blobPath(kind remote.Kind, key string) string {
	return filepath.Join(s.dir, "blobs", kind.String(), key)
}

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request, kind remote.Kind, key string) error {
	f, err := os.Open(s.blobPath(kind, key))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s %s: %w", kind, key, errNotFound)
		}
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s %s: %w", kind, key, errNotFound)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
	if kind.ContentAddressed() {
		w.Header().Set("ETag", `"`+key+`"`)
	}
	if r.Method == http.MethodHead {
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err = io.Copy(w, f) // sendfile through the recorder's ReadFrom
	if err != nil {
		// Headers are out; the client sees a short body and its hash check fails.
		return fmt.Errorf("send %s %s: %w", kind, key, err)
	}
	return nil
}

func (s *Server) putBlob(w http.ResponseWriter, r *http.Request, kind remote.Kind, key string) error {
	limit := s.limits[kind]
	if r.ContentLength > limit {
		return fmt.Errorf("%w: %d bytes, limit for %s is %d", errTooLarge, r.ContentLength, kind, limit)
	}
	body := http.MaxBytesReader(w, r.Body, limit)
	var src io.Reader = body
	switch {
	case kind.ContentAddressed():
		d, _ := remote.ParseKey(key) // validated by parseRoute
		src = remote.NewVerifyingReader(body, d, key)
	default:
		b, err := io.ReadAll(body)
		if err != nil {
			return fmt.Errorf("read %s %s: %w", kind, key, err)
		}
		if err := remote.CheckMetadataBlob(b, key); err != nil {
			return err
		}
		src = bytes.NewReader(b)
	}
	if err := writeAtomic(filepath.Join(s.dir, "blobs", kind.String()), key, src); err != nil {
		return fmt.Errorf("store %s %s: %w", kind, key, err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
	return nil
}

func (s *Server) list(w http.ResponseWriter, kind remote.Kind) error {
	ents, err := os.ReadDir(filepath.Join(s.dir, "blobs", kind.String()))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	keys := []string{}
	for _, e := range ents {
		if e.Type().IsRegular() {
			if _, err := remote.ParseKey(e.Name()); err == nil {
				keys = append(keys, e.Name())
			}
		}
	}
	slices.Sort(keys)
	b, err := json.Marshal(keys)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
	return nil
}

func (s *Server) registryPath() string { return filepath.Join(s.dir, "registry.json") }

func (s *Server) getRegistry(w http.ResponseWriter, r *http.Request) error {
	b, err := os.ReadFile(s.registryPath())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("registry: %w", errNotFound)
		}
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("ETag", `"`+remote.RegistryVersion(b)+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
	return nil
}

// putRegistry validates the document and writes it. Writes are serialized; If-Match
// (the ETag of a GET) and If-None-Match: * make them conditional, so read-modify-write
// clients never lose each other's entries. A PUT with neither header (the original
// client) replaces the document unconditionally.
func (s *Server) putRegistry(w http.ResponseWriter, r *http.Request) error {
	if r.ContentLength > s.maxReg {
		return fmt.Errorf("%w: registry of %d bytes, limit %d", errTooLarge, r.ContentLength, s.maxReg)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.maxReg))
	if err != nil {
		return fmt.Errorf("read registry: %w", err)
	}
	doc, err := remote.ParseRegistry(b)
	if err != nil {
		return fmt.Errorf("%w: %w", errBadRequest, err)
	}
	s.regLock.Lock()
	defer s.regLock.Unlock()
	cur, err := os.ReadFile(s.registryPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err != nil {
		cur = nil
	}
	if err := checkNewKeys(doc, cur); err != nil {
		return err
	}
	if m := r.Header.Get("If-Match"); m != "" {
		if cur == nil || !etagMatch(m, remote.RegistryVersion(cur)) {
			return fmt.Errorf("%w: registry changed since it was read", errConflict)
		}
	}
	if r.Header.Get("If-None-Match") == "*" && cur != nil {
		return fmt.Errorf("%w: registry already exists", errConflict)
	}
	if err := writeAtomic(s.dir, "registry.json", bytes.NewReader(b)); err != nil {
		return fmt.Errorf("store registry: %w", err)
	}
	w.Header().Set("ETag", `"`+remote.RegistryVersion(b)+`"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ok")
	return nil
}

// checkNewKeys refuses a registry key that the client would refuse: each key must pass
// remote.ParseRef, the rule of `push --tag` and `pull` (name@tag or a bare name; name
// and tag 1-128 bytes, no whitespace, control characters, '/' or '\'). Keys the stored
// document cur already holds are exempt, so a registry that the original client wrote
// (it took --tag verbatim) stays writable; no new such key gets in.
func checkNewKeys(doc *remote.Registry, cur []byte) error {
	var old map[string]remote.Entry
	if cur != nil {
		if r, err := remote.ParseRegistry(cur); err == nil {
			old = r.Entries
		}
	}
	keys := make([]string, 0, len(doc.Entries))
	for k := range doc.Entries {
		keys = append(keys, k)
	}
	slices.Sort(keys) // the same document always names the same key
	for _, k := range keys {
		if _, ok := old[k]; ok {
			continue
		}
		if _, err := remote.ParseRef(k); err != nil {
			return fmt.Errorf("%w: registry key: %w", errBadRequest, err)
		}
	}
	return nil
}

func etagMatch(header, version string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.Trim(strings.TrimPrefix(t, "W/"), `"`) == version {
			return true
		}
	}
	return false
}

// writeAtomic streams src into dir/name: temp file in dir, fsync, rename, fsync dir. On
// any error (src's included, such as a digest mismatch at its end) the temp file is
// removed and nothing is visible.
func writeAtomic(dir, name string, src io.Reader) (err error) {
	f, err := os.CreateTemp(dir, ".tmp-"+name[:min(len(name), 12)]+"-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err = store.CopyPipelined(context.Background(), store.WriteBehind(f), onlyReader{src}); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chmod(f.Name(), 0o644); err != nil {
		return err
	}
	if err = os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// onlyReader hides everything but Read, so CopyBuffer uses our 1 MiB buffer (or the
// source's WriteTo, when it has one, is not bypassed in favour of tiny ReadFrom reads).
type onlyReader struct{ io.Reader }

// recorder remembers the status and byte count and keeps sendfile (ReadFrom) working.
type recorder struct {
	http.ResponseWriter
	status int
	n      int64
	wrote  bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status = code
		r.wrote = true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	n, err := r.ResponseWriter.Write(b)
	r.n += int64(n)
	return n, err
}

func (r *recorder) ReadFrom(src io.Reader) (int64, error) {
	r.wrote = true
	n, err := io.Copy(r.ResponseWriter, src)
	r.n += n
	return n, err
}

// Connection timeouts of Serve: the request line and headers must arrive within
// ReadHeaderTimeout (no request needs more than a few hundred bytes of them), and a
// kept-alive connection with no request is closed after IdleTimeout. Bodies have the
// limits of Options (MinUploadRate, UploadTimeout) instead of a fixed ReadTimeout, which
// would cut off large uploads.
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 60 * time.Second
)

// Serve runs an HTTP server for s on ln until ctx is done, then shuts down gracefully,
// waiting up to grace for requests in flight.
func Serve(ctx context.Context, ln net.Listener, s *Server, grace time.Duration) error {
	hs := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: ReadHeaderTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	<-errc
	return nil
}
