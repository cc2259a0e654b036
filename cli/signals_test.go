package cli

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestWithSignals(t *testing.T) {
	var errb syncBuffer
	exited := make(chan int, 1)
	ctx, stop := WithSignals(context.Background(), &errb, func(code int) { exited <- code })
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("SIGINT did not cancel the context")
	}
	select {
	case code := <-exited:
		t.Fatalf("exit(%d) after one signal", code)
	case <-time.After(100 * time.Millisecond):
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 130 || !strings.Contains(errb.String(), "the next karapace command rolls back") {
			t.Errorf("second signal: exit(%d), stderr %q", code, errb.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a second signal did not exit")
	}
}
