package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// WithSignals returns a context that the first SIGINT or SIGTERM cancels: the command
// stops at its next step and rolls back (exit 130). A second signal means the user will
// not wait for that: exit is called with 130 at once, after saying that the next command
// recovers what was left unfinished (the original's B28). stop undoes the handling.
func WithSignals(parent context.Context, stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(parent)
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-done:
			return
		}
		select {
		case <-sigs:
			fmt.Fprintln(stderr, "\nkarapace: interrupted again, quitting now; the next karapace command rolls back what was left unfinished")
			exit(exitCancelled)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}
