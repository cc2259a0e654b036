package image

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/karapace/karapace/schema"
)

// Sentinel error classes. Every error from this package that falls in one of these
// classes wraps it; inspect with errors.Is.
var (
	// ErrImageNotFound: the name is not a known alias, the server has no such image or
	// build, or a local tarball does not exist.
	ErrImageNotFound = errors.New("image not found")
	// ErrOffline: the operation needs the network but offline mode is on.
	ErrOffline = errors.New("offline mode")
	// ErrDownload: the download failed (HTTP status, DNS, TLS, connection, timeout).
	ErrDownload = errors.New("image download failed")
	// ErrUnsafeArchive: the tarball tries to escape the target directory or is not a
	// tarball at all.
	ErrUnsafeArchive = errors.New("unsafe or malformed image archive")
	// ErrCorrupt: a cached image no longer matches its recorded digests.
	ErrCorrupt = errors.New("image integrity check failed")
)

// Kind says where an image comes from.
type Kind int

const (
	// KindAlias is a name of the LXC image server layout (debian/bookworm, fedora, ...).
	KindAlias Kind = iota + 1
	// KindURL is a tarball at an http or https URL.
	KindURL
	// KindLocal is a tarball on the local file system (file:// URL or absolute path).
	KindLocal
)

func (k Kind) String() string {
	switch k {
	case KindAlias:
		return "alias"
	case KindURL:
		return "url"
	case KindLocal:
		return "local"
	}
	return "unknown"
}

// Ref is a resolved image name. Resolve is pure: it never touches the network or disk.
type Ref struct {
	// Name is the input, trimmed.
	Name string
	Kind Kind
	// Distro and Release locate an alias on the image server, e.g. "debian", "bookworm".
	Distro, Release string
	// URL is the tarball URL of a KindURL ref, exactly as given.
	URL string
	// Path is the absolute path of a KindLocal tarball.
	Path string
	// Key names the cache directory <store>/images/<Key>.
	Key string
	// Display is a human-readable name for progress messages.
	Display string
}

// alias is one row of the alias table.
type alias struct {
	names           []string
	distro, release string
	key, display    string
}

// aliases is the original's table: every accepted name, the server path and cache key.
var aliases = []alias{
	{[]string{"rolling", "opensuse", "opensuse/tumbleweed", "tumbleweed"}, "opensuse", "tumbleweed", "opensuse-tumbleweed", "openSUSE Tumbleweed"},
	{[]string{"opensuse/leap", "leap"}, "opensuse", "15.6", "opensuse-leap-15.6", "openSUSE Leap 15.6"},
	{[]string{"ubuntu", "ubuntu/24.04", "ubuntu/noble"}, "ubuntu", "noble", "ubuntu-noble", "Ubuntu 24.04 (Noble)"},
	{[]string{"ubuntu/22.04", "ubuntu/jammy"}, "ubuntu", "jammy", "ubuntu-jammy", "Ubuntu 22.04 (Jammy)"},
	{[]string{"ubuntu/24.10", "ubuntu/oracular"}, "ubuntu", "oracular", "ubuntu-oracular", "Ubuntu 24.10 (Oracular)"},
	{[]string{"ubuntu/20.04", "ubuntu/focal"}, "ubuntu", "focal", "ubuntu-focal", "Ubuntu 20.04 (Focal)"},
	{[]string{"debian", "debian/bookworm"}, "debian", "bookworm", "debian-bookworm", "Debian Bookworm"},
	{[]string{"debian/trixie"}, "debian", "trixie", "debian-trixie", "Debian Trixie"},
	{[]string{"debian/sid"}, "debian", "sid", "debian-sid", "Debian Sid"},
	{[]string{"fedora", "fedora/41"}, "fedora", "41", "fedora-41", "Fedora 41"},
	{[]string{"fedora/40"}, "fedora", "40", "fedora-40", "Fedora 40"},
	{[]string{"fedora/42"}, "fedora", "42", "fedora-42", "Fedora 42"},
	{[]string{"arch", "archlinux"}, "archlinux", "current", "archlinux", "Arch Linux"},
}

// Aliases returns every accepted alias name, in table order.
func Aliases() []string {
	var out []string
	for _, a := range aliases {
		out = append(out, a.names...)
	}
	return out
}

// Resolve maps an image name to a Ref:
//   - an alias (case-insensitive) of the table above;
//   - an http:// or https:// URL, kept exactly as given (case matters in URLs);
//   - a file:// URL or an absolute path to a local tarball.
func Resolve(name string) (Ref, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return Ref{}, fmt.Errorf("%w: empty image name", ErrImageNotFound)
	}
	lower := strings.ToLower(name)
	switch {
	case strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://"):
		u, err := url.Parse(name)
		if err != nil || u.Host == "" {
			return Ref{}, fmt.Errorf("%w: invalid image URL %q", ErrImageNotFound, name)
		}
		return Ref{
			Name: name, Kind: KindURL, URL: name,
			Key:     "custom-" + schema.SumString(name).String(),
			Display: "Custom (" + name + ")",
		}, nil
	case strings.HasPrefix(lower, "file://"):
		u, err := url.Parse(name)
		if err != nil || (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) {
			return Ref{}, fmt.Errorf("%w: invalid file URL %q (want file:///absolute/path)", ErrImageNotFound, name)
		}
		return localRef(name, u.Path), nil
	case filepath.IsAbs(name):
		return localRef(name, name), nil
	}
	for _, a := range aliases {
		for _, n := range a.names {
			if n == lower {
				return Ref{
					Name: name, Kind: KindAlias, Distro: a.distro, Release: a.release,
					Key: a.key, Display: a.display,
				}, nil
			}
		}
	}
	return Ref{}, fmt.Errorf("%w: unknown image %q; supported: %s, an http(s) URL, a file:// URL or an absolute path to a rootfs tarball",
		ErrImageNotFound, name, strings.Join(Aliases(), ", "))
}

func localRef(name, path string) Ref {
	path = filepath.Clean(path)
	return Ref{
		Name: name, Kind: KindLocal, Path: path,
		Key:     "local-" + schema.SumString(path).String(),
		Display: "Local (" + path + ")",
	}
}

// validKey reports whether key can name a directory under <store>/images: what Resolve
// produces, nothing that could climb out.
func validKey(key string) bool {
	if key == "" || len(key) > 200 || key[0] == '.' {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return !strings.Contains(key, "..")
}
