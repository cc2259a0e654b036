package namespace

import (
	"bytes"
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/karapace/karapace/runtime"
)

// openPTY opens a pty pair on the host: the test drives the master as a user's terminal
// emulator would.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	var unlock int32
	if err := ioctl(m.Fd(), syscall.TIOCSPTLCK, unsafe.Pointer(&unlock)); err != nil {
		t.Fatal(err)
	}
	var n uint32
	if err := ioctl(m.Fd(), syscall.TIOCGPTN, unsafe.Pointer(&n)); err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(int(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestRunPTY(t *testing.T) {
	e := newTestEnv(t)
	master, slave := openPTY(t)
	defer master.Close()
	defer slave.Close()
	ws := winsize{Row: 31, Col: 97}
	if err := ioctl(master.Fd(), syscall.TIOCSWINSZ, unsafe.Pointer(&ws)); err != nil {
		t.Fatal(err)
	}
	before, err := getTermios(slave.Fd())
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	// The shell reads a line typed on the terminal, so input flows too.
	// After the first line, the user's terminal is resized: the sandbox's pty follows.
	p := e.plan(t, "sh", "-c", "tty; stty size; read line; echo got:$line; stty size; exit 4")
	p.TTY = true
	go func() {
		time.Sleep(300 * time.Millisecond)
		ws := winsize{Row: 42, Col: 123}
		_ = ioctl(master.Fd(), syscall.TIOCSWINSZ, unsafe.Pointer(&ws))
		_ = syscall.Kill(os.Getpid(), syscall.SIGWINCH)
		time.Sleep(100 * time.Millisecond)
		_, _ = master.Write([]byte("typed\r"))
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := Run(ctx, p, runtime.Stdio{Stdin: slave, Stdout: slave, Stderr: slave}, Options{})
	if err != nil || code != 4 {
		t.Fatalf("code %d err %v, want 4", code, err)
	}
	after, err := getTermios(slave.Fd())
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Error("the user's terminal was not restored")
	}
	slave.Close()
	<-done
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"/dev/pts/0\n", "31 97\n", "got:typed\n42 123\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("terminal output %q lacks %q", got, want)
		}
	}
}
