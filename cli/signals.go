package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"github.com/karapace/karapace/runtime"
)

// signalState is what WithSignals shares with the commands through the context.
type signalState struct {
	// session is set while exec or enter runs a command: the session's launcher
	// forwards SIGINT to it (a SIGINT handler runs, and karapace exits with the
	// command's status), so SIGINT neither cancels nor counts.
	session atomic.Int32
}

type signalKey struct{}

// WithSignals returns a context that the first SIGINT or SIGTERM cancels: the command
// stops at its next step and rolls back (exit 130). A second signal means the user will
// not wait for that: exit is called with 130 at once, after saying that the next command
// recovers what was left unfinished (the original's B28). While a session's command runs
// (inSession), SIGINT is the command's alone. stop undoes the handling.
func WithSignals(parent context.Context, stderr io.Writer, exit func(int)) (ctx context.Context, stop func()) {
	st := &signalState{}
	ctx, cancel := context.WithCancel(context.WithValue(parent, signalKey{}, st))
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	next := func() bool {
		for {
			select {
			case s := <-sigs:
				if s == os.Interrupt && st.session.Load() > 0 {
					continue
				}
				return true
			case <-done:
				return false
			}
		}
	}
	go func() {
		if !next() {
			return
		}
		cancel()
		if !next() {
			return
		}
		fmt.Fprintln(stderr, "\nkarapace: interrupted again, quitting now; the next karapace command rolls back what was left unfinished")
		exit(exitCancelled)
	}()
	return ctx, func() {
		signal.Stop(sigs)
		close(done)
		cancel()
	}
}

// inSession runs a session's command (exec, enter) with SIGINT left to the session:
// its launcher forwards the terminal's ^C to the command, and the command decides.
func inSession(ctx context.Context, run func() (int, error)) (int, error) {
	if st, ok := ctx.Value(signalKey{}).(*signalState); ok {
		st.session.Add(1)
		defer st.session.Add(-1)
	}
	code, err := run()
	if err != nil && (code == 126 || code == 127) && errors.Is(err, runtime.ErrExecFailed) {
		// The command could not be started: exit as a shell would, 127 when it was
		// not found, 126 when it could not be executed.
		err = startError{code: code, err: err}
	}
	return code, err
}
