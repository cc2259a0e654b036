package dbus

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/karapace/karapace/schema"
)

// openTerminal starts `karapace --store <root> enter <id>` in the user's terminal
// emulator: $TERMINAL, else x-terminal-emulator, else xdg-terminal-exec. The terminal
// runs in its own session with no tie to the service's stdio, and outlives the
// service. It returns the terminal's pid and the terminal program.
func (s *Service) openTerminal(id schema.EnvID) (int, string, error) {
	karapace, err := s.karapaceBin()
	if err != nil {
		return 0, "", err
	}
	term, err := s.terminal()
	if err != nil {
		return 0, "", err
	}
	argv := append([]string{}, term...)
	if filepath.Base(term[0]) != "xdg-terminal-exec" {
		argv = append(argv, "-e") // the convention of xterm, x-terminal-emulator and most others
	}
	argv = append(argv, karapace, "--store", s.opts.StoreRoot, "enter", id.String())
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(append([]string{}, s.opts.Environ...), "KARAPACE_STORE="+s.opts.StoreRoot)
	cmd.Dir = s.getenv("HOME")
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // stdio stays nil: /dev/null
	if err := cmd.Start(); err != nil {
		return 0, "", fmt.Errorf("start terminal %s: %w", term[0], err)
	}
	pid := cmd.Process.Pid
	s.log.Info("opened terminal", "env", id.Short(), "terminal", term[0], "pid", pid)
	go func() {
		// Reap it; many terminals hand the window to a server process and exit at once.
		if err := cmd.Wait(); err != nil {
			s.log.Debug("terminal exited", "pid", pid, "err", err)
		}
	}()
	return pid, term[0], nil
}

// terminal returns the terminal emulator's argv prefix.
func (s *Service) terminal() ([]string, error) {
	path := s.getenv("PATH")
	if t := strings.Fields(s.getenv("TERMINAL")); len(t) > 0 {
		p, err := lookPath(t[0], path)
		if err == nil {
			return append([]string{p}, t[1:]...), nil
		}
		s.log.Warn("$TERMINAL not found; trying the defaults", "terminal", t[0], "err", err)
	}
	for _, name := range []string{"x-terminal-emulator", "xdg-terminal-exec"} {
		if p, err := lookPath(name, path); err == nil {
			return []string{p}, nil
		}
	}
	return nil, fmt.Errorf("%w: set $TERMINAL or install x-terminal-emulator or xdg-terminal-exec", ErrNoTerminal)
}

// karapaceBin finds the karapace binary: Options.KarapaceBin, else next to this
// program, else in PATH.
func (s *Service) karapaceBin() (string, error) {
	if s.opts.KarapaceBin != "" {
		return s.opts.KarapaceBin, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "karapace")
		if isExecutable(p) {
			return p, nil
		}
	}
	p, err := lookPath("karapace", s.getenv("PATH"))
	if err != nil {
		return "", fmt.Errorf("karapace binary not found next to karapace-dbus or in PATH: %w", err)
	}
	return p, nil
}

// lookPath finds an executable like exec.LookPath, in the given PATH value.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if isExecutable(name) {
			return name, nil
		}
		return "", fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
