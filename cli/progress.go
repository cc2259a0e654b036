package cli

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// spinnerFrames and spinnerTick are the original's spinner (indicatif's braille dots).
var spinnerFrames = [...]string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

const spinnerTick = 80 * time.Millisecond

// spinner reports a long operation on stderr: an animated line on a terminal, plain
// lines otherwise (logs, CI). It is safe for concurrent use, so backend progress
// callbacks may update it from any goroutine.
type spinner struct {
	w   io.Writer
	tty bool

	mu     sync.Mutex
	msg    string
	detail string
	frame  int
	done   bool
	stop   chan struct{}
	exited chan struct{}
}

// newSpinner starts a spinner with msg. When quiet, nothing is printed at all.
func newSpinner(w io.Writer, tty bool, msg string) *spinner {
	s := &spinner{w: w, tty: tty, msg: msg}
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

// draw repaints the line; the caller holds mu (or owns s exclusively).
func (s *spinner) draw() {
	line := s.msg
	if s.detail != "" {
		line += " " + s.detail
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
