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
	master   *os.File
	userFD   int // the user's terminal (stdin), -1 when stdin is not one
	saved    *syscall.Termios
	input    *os.File // non-blocking duplicate of stdin, so the relay can be stopped
	inputFD  int
	wasNonbl bool // stdin's file description was already non-blocking
	winch    chan os.Signal
	outDone  chan struct{}
	log      *slog.Logger
}

func startTerminal(master *os.File, stdio runtime.Stdio, log *slog.Logger) *terminal {
	t := &terminal{master: master, outDone: make(chan struct{}), log: log, userFD: -1, inputFD: -1}
	// File.Fd switches a file to blocking mode, on the description it shares with our
	// duplicate: take the raw numbers once, here, and never call Fd on them again.
	masterFD := master.Fd()
	if f, ok := stdio.Stdin.(*os.File); ok {
		fd := int(f.Fd())
		if _, err := getTermios(uintptr(fd)); err == nil {
			t.userFD = fd
			copySize(uintptr(fd), masterFD)
			if saved, err := makeRaw(uintptr(fd)); err == nil {
				t.saved = saved
			}
			t.winch = make(chan os.Signal, 1)
			signal.Notify(t.winch, syscall.SIGWINCH)
			go func(c chan os.Signal) {
				for range c {
					copySize(uintptr(fd), masterFD)
				}
			}(t.winch)
		}
		if flags, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_GETFL, 0); e == 0 {
			t.wasNonbl = flags&syscall.O_NONBLOCK != 0
		}
		if dup, err := syscall.Dup(fd); err == nil {
			syscall.CloseOnExec(dup)
			if syscall.SetNonblock(dup, true) == nil {
				t.inputFD = dup
				t.input = os.NewFile(uintptr(dup), "stdin")
			} else {
				syscall.Close(dup)
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
		_ = syscall.SetNonblock(t.inputFD, t.wasNonbl)
		t.input.Close()
	}
	if t.winch != nil {
		signal.Stop(t.winch)
		close(t.winch)
	}
	if t.saved != nil {
		_ = ioctl(uintptr(t.userFD), syscall.TCSETS, unsafe.Pointer(t.saved))
	}
	t.master.Close()
}
