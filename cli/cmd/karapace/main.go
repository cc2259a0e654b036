// Command karapace is the Karapace command line.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/karapace/karapace/cli"
)

func main() {
	// Catching SIGPIPE (instead of dying of it) turns a write to a closed stdout into
	// an EPIPE error, which the CLI treats as a clean exit (`karapace list | head`).
	// A caught signal resets to the default in children, so commands run by exec and
	// enter still see SIGPIPE normally.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	ctx, stop := cli.WithSignals(context.Background(), os.Stderr, os.Exit)
	code := cli.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
