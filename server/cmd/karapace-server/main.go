// Command karapace-server is the reference remote store for Karapace: protocol v1 over
// HTTP, blobs and a registry in a data directory.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/karapace/karapace/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
		os.Exit(0)
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintf(os.Stderr, "karapace-server: %v\n", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fs := flag.NewFlagSet("karapace-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Karapace remote protocol v1 server\n\nUsage: karapace-server [flags]\n\nFlags:\n")
		fs.PrintDefaults()
	}
	port := fs.Int("port", 8321, "TCP port to listen on (0 picks a free one)")
	bind := fs.String("bind", "127.0.0.1", "address to listen on (0.0.0.0 for all interfaces)")
	dataDir := fs.String("data-dir", "./karapace-remote-data", "directory holding blobs and the registry")
	token := fs.String("token", "", "require `Authorization: Bearer TOKEN` on every request (default $KARAPACE_SERVER_TOKEN)")
	maxObject := fs.Int64("max-object-size", server.DefaultMaxObjectBytes, "largest object accepted, in bytes")
	maxLayer := fs.Int64("max-layer-size", server.DefaultMaxLayerBytes, "largest layer manifest accepted, in bytes")
	maxMeta := fs.Int64("max-metadata-size", server.DefaultMaxMetadataBytes, "largest metadata document accepted, in bytes")
	maxReg := fs.Int64("max-registry-size", server.DefaultMaxRegistryBytes, "largest registry document accepted, in bytes")
	maxUploads := fs.Int("max-uploads", server.DefaultMaxUploads, "most uploads (PUTs) in progress at once; one more is answered 503 with Retry-After")
	minRate := fs.Int64("min-upload-rate", server.DefaultMinUploadRate, "slowest request body accepted, in bytes per second averaged over --upload-rate-window (0 turns the check off)")
	rateWindow := fs.Duration("upload-rate-window", server.DefaultUploadRateWindow, "window of --min-upload-rate")
	uploadTimeout := fs.Duration("upload-timeout", 0, "longest time from a request's headers to the end of its body (0: no limit)")
	logFormat := fs.String("log-format", "text", "log format on stderr: text or json")
	verbose := fs.Bool("verbose", false, "log debug messages too")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "karapace-server: unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	if *port < 0 || *port > 65535 {
		fmt.Fprintf(stderr, "karapace-server: --port %d out of range\n", *port)
		return errUsage
	}
	switch {
	case *maxUploads < 1:
		fmt.Fprintf(stderr, "karapace-server: --max-uploads %d: want at least 1\n", *maxUploads)
		return errUsage
	case *minRate < 0 || *rateWindow <= 0 || *uploadTimeout < 0:
		fmt.Fprintf(stderr, "karapace-server: --min-upload-rate, --upload-timeout must not be negative and --upload-rate-window must be positive\n")
		return errUsage
	}
	if *minRate == 0 {
		*minRate = -1 // off; 0 would take the default
	}
	if *token == "" {
		*token = getenv("KARAPACE_SERVER_TOKEN")
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	var h slog.Handler
	switch *logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	case "json":
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	default:
		fmt.Fprintf(stderr, "karapace-server: --log-format %q: want text or json\n", *logFormat)
		return errUsage
	}
	log := slog.New(h)

	srv, err := server.New(server.Options{
		DataDir: *dataDir, Token: *token, Logger: log,
		MaxObjectBytes: *maxObject, MaxLayerBytes: *maxLayer,
		MaxMetadataBytes: *maxMeta, MaxRegistryBytes: *maxReg,
		MaxUploads: *maxUploads, MinUploadRate: *minRate, UploadRateWindow: *rateWindow,
		UploadTimeout: *uploadTimeout,
	})
	if err != nil {
		return err
	}
	addr := net.JoinHostPort(*bind, strconv.Itoa(*port))
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on %s: %w", addr, err)
	}
	log.Info("listening", "addr", ln.Addr().String(), "data_dir", srv.DataDir(), "auth", *token != "", "protocol", 1,
		"max_uploads", *maxUploads, "min_upload_rate", max(*minRate, 0), "upload_rate_window", *rateWindow, "upload_timeout", *uploadTimeout)
	if err := server.Serve(ctx, ln, srv, 10*time.Second); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}
