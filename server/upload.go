package server

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// Default upload limits. An upload must bring DefaultMinUploadRate bytes per second
// averaged over DefaultUploadRateWindow (1.875 MiB per 30 s window): a trickled body is
// cut off within a window, while a 1 GiB upload over loopback or a LAN, at hundreds of
// MiB/s, is never near it. At most DefaultMaxUploads uploads run at once.
const (
	DefaultMinUploadRate    int64         = 64 << 10
	DefaultUploadRateWindow time.Duration = 30 * time.Second
	DefaultMaxUploads                     = 64
)

// RetryAfter is what a refused upload is told to wait (the Retry-After header of a 503),
// in seconds.
const RetryAfter = 5

// Errors of the upload limits, mapped to statuses in status: 408 for a body that is too
// slow or too late, 503 (with Retry-After) when every upload slot is taken.
var (
	errTooSlow = errors.New("request body too slow")
	errBusy    = errors.New("too many uploads in progress")
)

// slots bounds the uploads in progress. A full server refuses at once rather than
// queueing, so a refused client holds no connection or temp file.
type slots chan struct{}

func (s slots) tryAcquire() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) release() { <-s }

// bodyLimits are the deadlines of a request body. need bytes must arrive within window
// of the start of the body, and again within window of the moment the previous need
// bytes were complete (a window restarts as soon as it is satisfied, so a burst earns no
// credit for a later stall); the whole body must be in by timeout after the request's
// headers. A zero need or timeout turns that check off.
type bodyLimits struct {
	rate    int64 // bytes per second; need is rate * window
	need    int64
	window  time.Duration
	timeout time.Duration
}

func newBodyLimits(rate int64, window, timeout time.Duration) bodyLimits {
	l := bodyLimits{window: window, timeout: max(timeout, 0)}
	if rate > 0 && window > 0 {
		l.rate = rate
		l.need = max(int64(float64(rate)*window.Seconds()), 1)
	}
	return l
}

func (l bodyLimits) off() bool { return l.need <= 0 && l.timeout <= 0 }

// deadlineBody enforces bodyLimits on a request body. It sets the connection's read
// deadline to the earlier of the window's end and the absolute end, so a client that
// sends nothing at all is cut off too, not only one whose reads return: a deadline can
// only expire when a limit is broken, so its expiry is final. Where the connection
// cannot take a deadline (an http.ResponseWriter without one, as in tests), the same
// limits are checked after every read.
type deadlineBody struct {
	io.ReadCloser
	rc      *http.ResponseController
	lim     bodyLimits
	end     time.Time // absolute end; zero when none
	winEnd  time.Time // end of the current window; zero when no rate check
	got     int64     // bytes of the current window
	started time.Time
	err     error // sticky once a limit is broken
}

func newDeadlineBody(w http.ResponseWriter, body io.ReadCloser, lim bodyLimits, now time.Time) *deadlineBody {
	b := &deadlineBody{ReadCloser: body, rc: http.NewResponseController(w), lim: lim, started: now}
	if lim.timeout > 0 {
		b.end = now.Add(lim.timeout)
	}
	if lim.need > 0 {
		b.winEnd = now.Add(lim.window)
	}
	b.arm()
	return b
}

// deadline is the earlier of the two ends that are set.
func (b *deadlineBody) deadline() time.Time {
	switch {
	case b.winEnd.IsZero():
		return b.end
	case b.end.IsZero() || b.winEnd.Before(b.end):
		return b.winEnd
	}
	return b.end
}

func (b *deadlineBody) arm() {
	// ErrNotSupported leaves the checks after each read.
	_ = b.rc.SetReadDeadline(b.deadline())
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.ReadCloser.Read(p)
	now := time.Now()
	if b.lim.need > 0 {
		b.got += int64(n)
		if b.got >= b.lim.need {
			b.got = 0
			b.winEnd = now.Add(b.lim.window)
			b.arm()
		}
	}
	switch {
	case err == io.EOF:
		// Done: lift the deadline, so the server's read in the background (which
		// watches for the client going away) does not trip it while the handler works.
		_ = b.rc.SetReadDeadline(time.Time{})
		return n, err
	case err != nil && !errors.Is(err, os.ErrDeadlineExceeded):
		return n, err
	case err == nil && !b.late(now):
		return n, nil
	}
	b.err = b.limitError(now)
	return n, b.err
}

func (b *deadlineBody) late(now time.Time) bool {
	d := b.deadline()
	return !d.IsZero() && !now.Before(d)
}

// limitError says which limit broke: the absolute one when it is the earlier end.
func (b *deadlineBody) limitError(now time.Time) error {
	if !b.end.IsZero() && !b.end.After(b.deadline()) {
		return fmt.Errorf("%w: body not complete after %s (limit %s)", errTooSlow, now.Sub(b.started).Round(time.Millisecond), b.lim.timeout)
	}
	return fmt.Errorf("%w: fewer than %d bytes in %s (minimum %d bytes/s)", errTooSlow, b.lim.need, b.lim.window, b.lim.rate)
}
