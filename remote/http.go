package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// HTTP is the Backend that speaks protocol v1 over HTTP:
//
//	PUT|GET|HEAD {base}/{objects|layers|metadata}/{key}
//	GET          {base}/{objects|layers|metadata}/       (JSON array of keys)
//	GET|PUT      {base}/registry                         (JSON document)
//
// Every request carries X-Karapace-Protocol: 1 and, when a token is configured,
// Authorization: Bearer <token>. Blobs stream in both directions.
type HTTP struct {
	base     string
	token    string
	client   *http.Client
	verifies atomic.Bool // a response carried VerifiesHeader: blake3
}

// UploadsVerified implements UploadVerifier: true once the server has said (on any
// response) that it verifies uploads.
func (h *HTTP) UploadsVerified() bool { return h.verifies.Load() }

func (h *HTTP) note(resp *http.Response) {
	if resp.Header.Get(VerifiesHeader) == "blake3" {
		h.verifies.Store(true)
	}
}

// HTTPOptions tunes NewHTTP. The zero value is fine.
type HTTPOptions struct {
	// Client sends the requests; nil means a client with a transport sized for large
	// blobs and no overall timeout (blobs may take long; cancel through the context).
	Client *http.Client
	// Logger receives warnings (a token sent over plain http); nil discards them.
	Logger *slog.Logger
}

// NewHTTP returns an HTTP backend for c.URL, an http or https URL.
func NewHTTP(c Config, opts HTTPOptions) (*HTTP, error) {
	u, err := url.Parse(c.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: remote url %q: %v", ErrConfig, c.URL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: remote url %q: want http://host[:port][/path] or https://...", ErrConfig, c.URL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%w: remote url %q: no query or fragment allowed", ErrConfig, c.URL)
	}
	if c.Token != "" && u.Scheme == "http" && !isLoopback(u.Hostname()) && opts.Logger != nil {
		opts.Logger.Warn("sending the remote token over plain http", "url", c.URL)
	}
	client := opts.Client
	if client == nil {
		client = &http.Client{Transport: NewTransport()}
	}
	return &HTTP{base: strings.TrimRight(c.URL, "/"), token: c.Token, client: client}, nil
}

// NewTransport returns an http.Transport suited to blob transfer: large socket buffers,
// connection reuse across the parallel uploads of a push, and proxy settings from the
// environment.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          32,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		WriteBufferSize:       256 << 10,
		ReadBufferSize:        256 << 10,
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CloseIdleConnections closes kept-alive connections (call it when done with the remote,
// so a server shutting down does not wait for them).
func (h *HTTP) CloseIdleConnections() { h.client.CloseIdleConnections() }

// URL returns the base URL.
func (h *HTTP) URL() string { return h.base }

func (h *HTTP) blobURL(kind Kind, key string) (string, error) {
	if !kind.Valid() {
		return "", fmt.Errorf("%w: unknown kind %d", ErrInvalidKey, int(kind))
	}
	if _, err := ParseKey(key); err != nil {
		return "", err
	}
	return h.base + "/" + kind.Route() + "/" + key, nil
}

func (h *HTTP) newRequest(ctx context.Context, method, u string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	req.Header.Set(ProtocolHeader, strconv.Itoa(ProtocolVersion))
	req.Header.Set("User-Agent", "karapace-remote/1")
	if h.token != "" {
		req.Header.Set("Authorization", "Bearer "+h.token)
	}
	return req, nil
}

// do sends req and turns any status but 2xx into an *HTTPError (the body is closed
// then). For a success the caller owns resp.Body.
func (h *HTTP) do(req *http.Request) (*http.Response, error) {
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), err)
	}
	h.note(resp)
	// A 3xx left after the client's redirect handling (a PUT whose body cannot be
	// replayed) is a failure too: nothing was stored.
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		drainClose(resp.Body)
		return nil, &HTTPError{Method: req.Method, URL: req.URL.Redacted(), Status: resp.StatusCode, Message: strings.TrimSpace(string(msg)), Class: resp.Header.Get(ErrorClassHeader)}
	}
	return resp, nil
}

// drainClose reads a little of what is left so the connection can be reused, then closes.
func drainClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

// PutBlob implements BlobPutter. The body streams from r.
func (h *HTTP) PutBlob(ctx context.Context, kind Kind, key string, r io.Reader, size int64) error {
	u, err := h.blobURL(kind, key)
	if err != nil {
		return err
	}
	req, err := h.newRequest(ctx, http.MethodPut, u, io.NopCloser(r))
	if err != nil {
		return err
	}
	req.ContentLength = size
	if size == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := h.do(req)
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

// GetBlob implements BlobGetter.
func (h *HTTP) GetBlob(ctx context.Context, kind Kind, key string) (io.ReadCloser, error) {
	u, err := h.blobURL(kind, key)
	if err != nil {
		return nil, err
	}
	req, err := h.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.do(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// HasBlob implements BlobStatter: 200 is true, 404 false, anything else an error.
func (h *HTTP) HasBlob(ctx context.Context, kind Kind, key string) (bool, error) {
	u, err := h.blobURL(kind, key)
	if err != nil {
		return false, err
	}
	req, err := h.newRequest(ctx, http.MethodHead, u, nil)
	if err != nil {
		return false, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("HEAD %s: %w", u, err)
	}
	h.note(resp)
	drainClose(resp.Body)
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, &HTTPError{Method: http.MethodHead, URL: u, Status: resp.StatusCode, Class: resp.Header.Get(ErrorClassHeader)}
}

// maxListBytes bounds a list response (about a million keys).
const maxListBytes = 80 << 20

// ListBlobs implements BlobLister.
func (h *HTTP) ListBlobs(ctx context.Context, kind Kind) ([]string, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrInvalidKey, int(kind))
	}
	u := h.base + "/" + kind.Route() + "/"
	req, err := h.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.do(req)
	if err != nil {
		return nil, err
	}
	defer drainClose(resp.Body)
	b, err := readLimited(resp.Body, maxListBytes)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	var keys []string
	if err := json.Unmarshal(b, &keys); err != nil {
		return nil, fmt.Errorf("%w: GET %s: want a JSON array of strings: %v", ErrProtocol, u, err)
	}
	if keys == nil {
		keys = []string{}
	}
	slices.Sort(keys)
	return keys, nil
}

// maxRegistryBytes bounds the registry document.
const maxRegistryBytes = 64 << 20

// GetRegistry implements RegistryStore. The version is the response's ETag, if any.
func (h *HTTP) GetRegistry(ctx context.Context) ([]byte, string, error) {
	u := h.base + "/registry"
	req, err := h.newRequest(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := h.do(req)
	if err != nil {
		return nil, "", err
	}
	defer drainClose(resp.Body)
	b, err := readLimited(resp.Body, maxRegistryBytes)
	if err != nil {
		return nil, "", fmt.Errorf("GET %s: %w", u, err)
	}
	return b, strings.Trim(resp.Header.Get("ETag"), `"`), nil
}

// PutRegistry implements RegistryStore: a conditional PUT (If-Match or If-None-Match)
// when ifVersion is set.
func (h *HTTP) PutRegistry(ctx context.Context, data []byte, ifVersion string) error {
	u := h.base + "/registry"
	req, err := h.newRequest(ctx, http.MethodPut, u, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	switch ifVersion {
	case "":
	case NoRegistry:
		req.Header.Set("If-None-Match", "*")
	default:
		req.Header.Set("If-Match", `"`+ifVersion+`"`)
	}
	resp, err := h.do(req)
	if err != nil {
		return err
	}
	drainClose(resp.Body)
	return nil
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: response larger than %d bytes", ErrProtocol, limit)
	}
	return b, nil
}
