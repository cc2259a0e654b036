package namespace

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unsafe"

	"github.com/karapace/karapace/runtime"
)

func unsafePointer[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

type winsize struct{ Row, Col, X, Y uint16 }

func ioctl(fd uintptr, req uint, arg unsafe.Pointer) error {
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, uintptr(req), uintptr(arg)); e != 0 {
		return e
	}
	return nil
}

func getTermios(fd uintptr) (*syscall.Termios, error) {
	var t syscall.Termios
	if err := ioctl(fd, syscall.TCGETS, unsafe.Pointer(&t)); err != nil {
		return nil, err
	}
	return &t, nil
}

// makeRaw puts a terminal in raw mode (as cfmakeraw) and returns its previous state.
func makeRaw(fd uintptr) (*syscall.Termios, error) {
	old, err := getTermios(fd)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Iflag &^= syscall.IGNBRK | syscall.BRKINT | syscall.PARMRK | syscall.ISTRIP | syscall.INLCR | syscall.IGNCR | syscall.ICRNL | syscall.IXON
	t.Oflag &^= syscall.OPOST
	t.Lflag &^= syscall.ECHO | syscall.ECHONL | syscall.ICANON | syscall.ISIG | syscall.IEXTEN
	t.Cflag &^= syscall.CSIZE | syscall.PARENB
	t.Cflag |= syscall.CS8
	t.Cc[syscall.VMIN] = 1
	t.Cc[syscall.VTIME] = 0
	if err := ioctl(fd, syscall.TCSETS, unsafe.Pointer(&t)); err != nil {
		return nil, err
	}
	return old, nil
}

func copySize(from, to uintptr) {
	var ws winsize
	if ioctl(from, syscall.TIOCGWINSZ, unsafe.Pointer(&ws)) == nil {
		_ = ioctl(to, syscall.TIOCSWINSZ, unsafe.Pointer(&ws))
	}
}

// terminal relays an interactive session: the user's terminal in raw mode, bytes both
// ways between it and the pty master, window size changes forwarded.
type terminal struct {
	master  *os.File
	userTTY *os.File // the user's terminal (stdin), nil when stdin is not one
	saved   *syscall.Termios
	input   *os.File // non-blocking duplicate of stdin, so the relay can be stopped
	winch   chan os.Signal
	outDone chan struct{}
	log     *slog.Logger
}

func startTerminal(master *os.File, stdio runtime.Stdio, log *slog.Logger) *terminal {
	t := &terminal{master: master, outDone: make(chan struct{}), log: log}
	if f, ok := stdio.Stdin.(*os.File); ok {
		if _, err := getTermios(f.Fd()); err == nil {
			t.userTTY = f
			copySize(f.Fd(), master.Fd())
			if saved, err := makeRaw(f.Fd()); err == nil {
				t.saved = saved
			}
			t.winch = make(chan os.Signal, 1)
			signal.Notify(t.winch, syscall.SIGWINCH)
			go func(c chan os.Signal) {
				for range c {
					copySize(f.Fd(), master.Fd())
				}
			}(t.winch)
		}
		if fd, err := syscall.Dup(int(f.Fd())); err == nil {
			syscall.CloseOnExec(fd)
			if syscall.SetNonblock(fd, true) == nil {
				t.input = os.NewFile(uintptr(fd), "stdin")
			} else {
				syscall.Close(fd)
			}
		}
	}
	if t.input != nil {
		go func() { _, _ = io.Copy(master, t.input) }()
	} else if stdio.Stdin != nil {
		go func() { _, _ = io.Copy(master, stdio.Stdin) }()
	}
	go func() {
		defer close(t.outDone)
		if stdio.Stdout != nil {
			_, err := io.Copy(stdio.Stdout, master)
			if err != nil && !errors.Is(err, syscall.EIO) {
				log.Debug("pty output", "err", err)
			}
		} else {
			_, _ = io.Copy(io.Discard, master)
		}
	}()
	return t
}

// finish waits for the session's output to drain and restores the user's terminal.
func (t *terminal) finish() {
	select {
	case <-t.outDone:
	case <-time.After(2 * time.Second):
		t.log.Warn("pty output did not end")
	}
	if t.input != nil {
		_ = t.input.SetReadDeadline(time.Now())
		_ = syscall.SetNonblock(int(t.input.Fd()), false)
		t.input.Close()
	}
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	if t.saved != nil {
		_ = ioctl(t.userTTY.Fd(), syscall.TCSETS, unsafe.Pointer(t.saved))
	}
	t.master.Close()
}
