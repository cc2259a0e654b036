package sandbox

import (
	"errors"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Kind is what a host path is, after following symlinks.
type Kind int

// The kinds of host path the plan cares about.
const (
	Missing Kind = iota // does not exist (or cannot be inspected)
	Dir
	File
	Socket
	Device // character or block device
	Other  // fifo and anything else
)

func (k Kind) String() string {
	switch k {
	case Missing:
		return "missing"
	case Dir:
		return "directory"
	case File:
		return "file"
	case Socket:
		return "socket"
	case Device:
		return "device"
	default:
		return "other"
	}
}

// FS answers the only questions Compute asks the host filesystem. Production code uses
// OSFS; tests use a fake, so Compute stays a pure function of its inputs.
type FS interface {
	// Kind reports what path is, following symlinks; Missing when it does not exist.
	Kind(path string) Kind
	// EvalSymlinks resolves every symlink in an absolute path, as filepath.EvalSymlinks.
	EvalSymlinks(path string) (string, error)
}

// OSFS is the real host filesystem.
type OSFS struct{}

// Kind implements FS with os.Stat.
func (OSFS) Kind(path string) Kind {
	fi, err := os.Stat(path)
	if err != nil {
		return Missing
	}
	return kindOf(fi.Mode())
}

// EvalSymlinks implements FS with filepath.EvalSymlinks.
func (OSFS) EvalSymlinks(path string) (string, error) { return filepath.EvalSymlinks(path) }

func kindOf(m fs.FileMode) Kind {
	switch {
	case m.IsDir():
		return Dir
	case m.IsRegular():
		return File
	case m&fs.ModeSocket != 0:
		return Socket
	case m&fs.ModeDevice != 0:
		return Device
	default:
		return Other
	}
}

// Host is everything Compute needs to know about the host, as data.
type Host struct {
	// Env is the caller's environment. Only the policy's allow-list of it reaches the
	// sandbox; the rest is read for host integration (DISPLAY, XDG_RUNTIME_DIR, ...).
	Env  map[string]string
	UID  uint32
	GID  uint32
	User string // user name
	Home string // absolute home directory
	// Cwd is the current directory; relative mount paths resolve against it only when
	// the manifest's directory is unknown.
	Cwd string
	FS  FS
}

// HostFromOS gathers the real host facts of the calling process.
func HostFromOS() Host {
	h := Host{
		Env: make(map[string]string),
		UID: uint32(os.Getuid()),
		GID: uint32(os.Getgid()),
		FS:  OSFS{},
	}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok && k != "" {
			h.Env[k] = v
		}
	}
	h.User = h.Env["USER"]
	h.Home = h.Env["HOME"]
	if h.User == "" || h.Home == "" {
		if u, err := user.LookupId(strconv.FormatUint(uint64(h.UID), 10)); err == nil {
			if h.User == "" {
				h.User = u.Username
			}
			if h.Home == "" {
				h.Home = u.HomeDir
			}
		}
	}
	if h.User == "" {
		h.User = "user"
	}
	if h.Home == "" {
		h.Home = "/home/" + h.User
	}
	if wd, err := os.Getwd(); err == nil {
		h.Cwd = wd
	}
	return h
}

// resolveExisting resolves the symlinks of path's longest existing prefix and appends
// the rest unchanged. A component that does not exist yet cannot be a symlink, so the
// result names the file the kernel would reach when the mount is performed now.
func resolveExisting(fsys FS, path string) (string, error) {
	rest := []string{}
	p := path
	for {
		r, err := fsys.EvalSymlinks(p)
		if err == nil {
			for i := len(rest) - 1; i >= 0; i-- {
				r = filepath.Join(r, rest[i])
			}
			return r, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(p)
		if parent == p {
			return "", err
		}
		rest = append(rest, filepath.Base(p))
		p = parent
	}
}
