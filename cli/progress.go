package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// spinnerFrames and spinnerTick are the original's spinner (indicatif's braille dots).
var spinnerFrames = [...]string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const spinnerTick = 80 * time.Millisecond

// spinner reports a long operation on stderr: an animated line on a terminal, plain
// lines otherwise (logs, CI). It is safe for concurrent use, so backend progress
// callbacks may update it from any goroutine.
type spinner struct {
	w     io.Writer
	tty   bool
	width int // the terminal's columns, 0 when unknown

	mu     sync.Mutex
	msg    string
	detail string
	frame  int
	done   bool
	xfer   *transfer // the download in progress, or nil
	stop   chan struct{}
	exited chan struct{}
}

// newSpinner starts a spinner with msg. When quiet, nothing is printed at all.
func newSpinner(w io.Writer, tty bool, msg string) *spinner {
	s := &spinner{w: w, tty: tty, msg: msg, width: termWidth(w)}
	if !tty {
		fmt.Fprintln(w, msg)
		return s
	}
	s.stop = make(chan struct{})
	s.exited = make(chan struct{})
	s.draw()
	go s.loop()
	return s
}

// spinner starts the spinner for a long command, on stderr. It stays silent under
// --json only where the original is silent, which the caller decides with quiet.
func (g *globals) spinner(msg string, quiet bool) *spinner {
	if quiet {
		return &spinner{w: io.Discard, done: true}
	}
	s := newSpinner(g.stderr, g.isTTY(g.stderr), msg)
	g.mu.Lock()
	g.active = s
	g.mu.Unlock()
	return s
}

// notice prints a line on stderr (the lock-wait message) without garbling a spinner
// that is drawing there.
func (g *globals) notice(msg string) {
	g.mu.Lock()
	s := g.active
	g.mu.Unlock()
	if s != nil && s.Println(msg) {
		return
	}
	fmt.Fprintln(g.stderr, msg)
}

// Println prints msg on a line of its own above the spinner; false when the spinner
// has ended (the caller prints it then).
func (s *spinner) Println(msg string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return false
	}
	if s.tty {
		fmt.Fprintf(s.w, "\r\x1b[2K%s\n", msg)
		s.draw()
		return true
	}
	fmt.Fprintln(s.w, msg)
	return true
}

func (s *spinner) loop() {
	t := time.NewTicker(spinnerTick)
	defer t.Stop()
	defer close(s.exited)
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			s.frame = (s.frame + 1) % len(spinnerFrames)
			s.draw()
			s.mu.Unlock()
		}
	}
}

// draw repaints the line; the caller holds mu (or owns s exclusively). A download's
// bar has the line while it lasts.
func (s *spinner) draw() {
	if s.xfer != nil {
		return
	}
	line := s.msg
	if s.detail != "" {
		line += " " + s.detail
	}
	// A line longer than the terminal wraps, and "\r\x1b[2K" then clears only its
	// last row: every repaint would leave a copy above.
	if r := []rune(line); s.width > 3 && len(r) > s.width-3 {
		line = string(r[:s.width-4]) + "…"
	}
	fmt.Fprintf(s.w, "\r\x1b[2K\x1b[36m%s\x1b[0m %s", spinnerFrames[s.frame], line)
}

// Progress shows a progress line from the engine or backend.
func (s *spinner) Progress(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	s.endTransfer()
	if !s.tty {
		fmt.Fprintf(s.w, "  %s\n", msg)
		return
	}
	s.detail = "(" + msg + ")"
	s.draw()
}

// Success ends the spinner with "✓ msg".
func (s *spinner) Success(msg string) { s.finish("✓", msg) }

// Fail ends the spinner with "✗ msg".
func (s *spinner) Fail(msg string) { s.finish("✗", msg) }

func (s *spinner) finish(mark, msg string) {
	s.mu.Lock()
	if s.done {
		s.mu.Unlock()
		return
	}
	s.done = true
	s.endTransfer()
	s.mu.Unlock()
	if s.stop != nil {
		close(s.stop)
		<-s.exited
	}
	if s.tty {
		fmt.Fprintf(s.w, "\r\x1b[2K%s %s\n", mark, msg)
		return
	}
	fmt.Fprintf(s.w, "%s %s\n", mark, msg)
}

// transfer is a download the spinner is showing: a bar (bytes, rate, ETA) on a terminal;
// on a log, a line at each quarter of a known size or every plainEvery of an unknown one.
type transfer struct {
	bar         *progressbar.ProgressBar
	start       time.Time
	done, total int64
	printed     int64     // quarters printed (known size)
	printedAt   time.Time // last line (unknown size)
}

const plainEvery = 10 * time.Second

// Transfer shows the byte counts of a download (total -1 when unknown); the next
// Progress line or the end of the spinner closes it with a one-line summary.
func (s *spinner) Transfer(done, total int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	x := s.xfer
	if x == nil {
		x = &transfer{start: time.Now(), total: total}
		x.printedAt = x.start
		s.xfer = x
		if s.tty {
			fmt.Fprint(s.w, "\r\x1b[2K")
			x.bar = progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(s.w),
				progressbar.OptionSetDescription("downloading"),
				progressbar.OptionShowBytes(true),
				progressbar.OptionShowCount(),
				progressbar.OptionShowTotalBytes(true),
				progressbar.OptionUseIECUnits(true),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionSetRenderBlankState(true),
				progressbar.OptionClearOnFinish(),
			)
		}
	}
	x.done, x.total = done, total
	if x.bar != nil {
		if total >= 0 && x.bar.GetMax64() != total {
			x.bar.ChangeMax64(total)
		}
		_ = x.bar.Set64(done)
		return
	}
	switch {
	case total > 0:
		if q := done * 4 / total; q > x.printed && q < 4 {
			x.printed = q
			fmt.Fprintf(s.w, "  downloaded %s of %s (%d%%)\n", formatBytes(done), formatBytes(total), q*25)
		}
	case time.Since(x.printedAt) >= plainEvery:
		x.printedAt = time.Now()
		fmt.Fprintf(s.w, "  downloaded %s\n", formatBytes(done))
	}
}

// endTransfer closes the download's bar with a summary line; the caller holds mu.
func (s *spinner) endTransfer() {
	x := s.xfer
	if x == nil {
		return
	}
	s.xfer = nil
	if x.bar != nil {
		_ = x.bar.Exit()
		fmt.Fprint(s.w, "\r\x1b[2K")
	}
	elapsed := time.Since(x.start).Round(100 * time.Millisecond)
	rate := ""
	if secs := elapsed.Seconds(); secs > 0 {
		rate = ", " + formatBytes(int64(float64(x.done)/secs)) + "/s"
	}
	fmt.Fprintf(s.w, "  downloaded %s in %s%s\n", formatBytes(x.done), elapsed, rate)
}

// termWidth is the width of the terminal w writes to, or 0.
func termWidth(w io.Writer) int {
	f, ok := w.(*os.File)
	if !ok {
		return 0
	}
	cols, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 0
	}
	return cols
}

// formatBytes prints n in binary units: "512 B", "1.5 KiB", "40.0 MiB".
func formatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
