package image

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/karapace/karapace/schema"
)

// HTTPError is an unexpected HTTP status from the image server. It wraps ErrDownload,
// and ErrImageNotFound as well for 404 and 410.
type HTTPError struct {
	URL        string
	StatusCode int
	Status     string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("GET %s: HTTP %s", e.URL, e.Status)
}

// Unwrap classifies the status.
func (e *HTTPError) Unwrap() []error {
	if e.StatusCode == http.StatusNotFound || e.StatusCode == http.StatusGone {
		return []error{ErrDownload, ErrImageNotFound}
	}
	return []error{ErrDownload}
}

// transient reports whether retrying the same request may succeed.
func (e *HTTPError) transient() bool {
	switch e.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

func statusError(url string, resp *http.Response) error {
	status := resp.Status
	if status == "" {
		status = strconv.Itoa(resp.StatusCode)
	}
	return &HTTPError{URL: url, StatusCode: resp.StatusCode, Status: status}
}

// describeNetError turns a transport error into a sentence naming its class.
func describeNetError(err error) string {
	var dnsErr *net.DNSError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	switch {
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("DNS lookup of %q failed: %v", dnsErr.Name, dnsErr.Err)
	case errors.As(err, &unknownCA), errors.As(err, &hostErr), errors.As(err, &certErr), errors.As(err, &verifyErr):
		return fmt.Sprintf("TLS certificate rejected: %v", err)
	case errors.As(err, &recordErr):
		return fmt.Sprintf("TLS handshake failed (is the server speaking TLS?): %v", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("connection refused: %v", err)
	case isTimeout(err):
		return fmt.Sprintf("timed out: %v", err)
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// transientNetError reports whether a transport error is worth a retry: connection
// resets, refused connections, timeouts and truncated bodies; not DNS "no such host",
// not certificate problems, not cancellation.
func transientNetError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return dnsErr.IsTemporary || dnsErr.IsTimeout
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var certErr x509.CertificateInvalidError
	var verifyErr *tls.CertificateVerificationError
	if errors.As(err, &unknownCA) || errors.As(err, &hostErr) || errors.As(err, &certErr) || errors.As(err, &verifyErr) {
		return false
	}
	return true
}

// download streams src into f (which must be empty), hashing while it writes in 1 MiB
// blocks. After a transient failure it retries, resuming with a Range request when the
// server allows it (and If-Range guards against the file changing in between), starting
// over otherwise.
func (c *Cache) download(ctx context.Context, src string, f *os.File, progress func(done, total int64)) (schema.Digest, int64, error) {
	d := &transfer{f: f, h: schema.NewHash(), total: -1, progress: progress}
	d.w = bufio.NewWriterSize(io.MultiWriter(f, d.h), 1<<20)
	var last error
	for attempt := 1; attempt <= c.attempts; attempt++ {
		if attempt > 1 {
			delay := c.retryDelay << (attempt - 2)
			c.log.Debug("retrying image download", "url", src, "attempt", attempt, "offset", d.written, "after", delay, "error", last)
			select {
			case <-ctx.Done():
				return schema.Digest{}, 0, fmt.Errorf("download %s: %w", src, ctx.Err())
			case <-time.After(delay):
			}
		}
		retry, err := c.fetchOnce(ctx, src, d)
		if err == nil {
			return d.h.Digest(), d.written, nil
		}
		if ctx.Err() != nil {
			return schema.Digest{}, 0, fmt.Errorf("download %s: %w", src, ctx.Err())
		}
		if !retry {
			return schema.Digest{}, 0, err
		}
		last = err
	}
	return schema.Digest{}, 0, fmt.Errorf("%w (gave up after %d attempts)", last, c.attempts)
}

// transfer is the state of one download across attempts.
type transfer struct {
	f         *os.File
	h         *schema.Hash
	w         *bufio.Writer
	written   int64  // bytes accepted into w (all of them reach f and h)
	total     int64  // full size when known, else -1
	validator string // ETag or Last-Modified of the first response, for If-Range
	progress  func(done, total int64)
}

// restart throws away what was received so far.
func (d *transfer) restart() error {
	d.w.Reset(io.MultiWriter(d.f, d.h))
	d.h.Reset()
	d.written = 0
	if err := d.f.Truncate(0); err != nil {
		return err
	}
	_, err := d.f.Seek(0, io.SeekStart)
	return err
}

// fetchOnce makes one request and copies its body. It reports whether a failure is
// worth a retry.
func (c *Cache) fetchOnce(ctx context.Context, src string, d *transfer) (retry bool, err error) {
	reqCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, src, nil)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrDownload, src, err)
	}
	if d.written > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", d.written))
		if d.validator != "" {
			req.Header.Set("If-Range", d.validator)
		}
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return transientNetError(err), fmt.Errorf("%w: %s: %s", ErrDownload, src, describeNetError(err))
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
		if d.written > 0 {
			c.log.Debug("server ignored the range request; starting over", "url", src)
			if err := d.restart(); err != nil {
				return false, fmt.Errorf("download %s: %w", src, err)
			}
		}
		d.total = resp.ContentLength
		d.validator = resp.Header.Get("ETag")
		if d.validator == "" || strings.HasPrefix(d.validator, "W/") {
			d.validator = resp.Header.Get("Last-Modified")
		}
	case http.StatusPartialContent:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != d.written {
			if err := d.restart(); err != nil {
				return false, fmt.Errorf("download %s: %w", src, err)
			}
			return true, fmt.Errorf("%w: %s: unusable Content-Range %q", ErrDownload, src, resp.Header.Get("Content-Range"))
		}
		if total >= 0 {
			d.total = total
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if d.written > 0 && d.written == d.total {
			return false, nil // we already had everything
		}
		if err := d.restart(); err != nil {
			return false, fmt.Errorf("download %s: %w", src, err)
		}
		return true, statusError(src, resp)
	default:
		herr := &HTTPError{URL: src, StatusCode: resp.StatusCode, Status: resp.Status}
		return herr.transient(), herr
	}

	// A stalled body (no byte for stallTimeout) cancels the request so it can be retried.
	stall := time.AfterFunc(c.stallTimeout, cancel)
	defer stall.Stop()
	buf := make([]byte, 256<<10)
	lastReport, lastReportAt := d.written, time.Now()
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(c.stallTimeout)
			if _, werr := d.w.Write(buf[:n]); werr != nil {
				return false, fmt.Errorf("download %s: write: %w", src, werr)
			}
			d.written += int64(n)
			// Every MiB, or every 200 ms on a slow link, so that a bar's rate moves.
			if d.progress != nil && (d.written-lastReport >= 1<<20 || time.Since(lastReportAt) >= 200*time.Millisecond) {
				d.progress(d.written, d.total)
				lastReport, lastReportAt = d.written, time.Now()
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if ferr := d.w.Flush(); ferr != nil {
				return false, fmt.Errorf("download %s: write: %w", src, ferr)
			}
			if ctx.Err() == nil && reqCtx.Err() != nil {
				rerr = fmt.Errorf("no data for %s: %w", c.stallTimeout, os.ErrDeadlineExceeded)
			}
			return true, fmt.Errorf("%w: %s: connection lost after %d bytes: %s", ErrDownload, src, d.written, describeNetError(rerr))
		}
	}
	if err := d.w.Flush(); err != nil {
		return false, fmt.Errorf("download %s: write: %w", src, err)
	}
	if d.total >= 0 && d.written != d.total {
		return true, fmt.Errorf("%w: %s: got %d of %d bytes", ErrDownload, src, d.written, d.total)
	}
	if d.progress != nil {
		d.progress(d.written, d.total)
	}
	return false, nil
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", giving -1).
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(s, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, size, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	first, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	total = -1
	if size != "*" {
		if total, err = strconv.ParseInt(size, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}
