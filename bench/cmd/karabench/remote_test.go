package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// pullPhases reads what core.Engine.Pull logs at debug level, in the text format of
// karapace's logger (log/slog's text handler).
func TestPullPhases(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Debug("resolving", "ref", "big@v1")
	log.Debug("pull: blobs transferred", "env", "abc", "bytes", 1<<30, "objects", 3, "layers", 1, "took", 6073*time.Millisecond)
	log.Debug("pull: environment materialized", "env", "abc", "took", 34500*time.Millisecond)
	tr, m, err := pullPhases(b.String())
	if err != nil || tr != 6073*time.Millisecond || m != 34500*time.Millisecond {
		t.Fatalf("pullPhases: %v %v %v\n%s", tr, m, err, b.String())
	}
	if _, _, err := pullPhases("level=DEBUG msg=\"pull: blobs transferred\" took=1s\n"); err == nil {
		t.Error("a log without the materialize phase parsed")
	}
	if _, _, err := pullPhases("level=DEBUG msg=\"pull: blobs transferred\" took=soon\nlevel=DEBUG msg=\"pull: environment materialized\" took=1s\n"); err == nil || !strings.Contains(err.Error(), "soon") {
		t.Errorf("a bad duration: %v", err)
	}
}
