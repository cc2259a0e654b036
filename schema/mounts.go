package schema

import (
	"path/filepath"
	"strings"
)

// RelativeHostPath reports whether a mount host path is relative as written: neither
// absolute nor starting with "~" ("./", ".", "src", "../shared").
func RelativeHostPath(p string) bool {
	return !strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "~")
}

// ResolveMounts returns a copy of n whose relative mount host paths are joined to dir
// (the manifest's directory, absolute) and cleaned: "./" in /home/a/web becomes
// /home/a/web. A relative mount names a directory of the project, so two projects
// with the same manifest text get two identities (preliminary and locked) and two
// environments. "~" paths stay as written (every user's home is theirs) and nothing
// is resolved on the file system: symlinks are followed at every session, by the
// mount policy. A dir that is not absolute leaves n as it is.
//
// The original hashed the path as written; a lock it wrote with a relative mount
// keeps its id because Lock.Identity hashes what the lock holds (see
// Lock.HasRelativeMounts).
func (n *Normalized) ResolveMounts(dir string) *Normalized {
	c := *n
	if !filepath.IsAbs(dir) {
		return &c
	}
	c.Mounts = make([]Mount, len(n.Mounts))
	for i, m := range n.Mounts {
		if RelativeHostPath(m.HostPath) {
			m.HostPath = filepath.Join(dir, m.HostPath)
		}
		c.Mounts[i] = m
	}
	return &c
}

// HasRelativeMounts reports whether the lock holds a mount host path as written
// relative: a lock of the original's, or of ours before ResolveMounts. A locked build
// from it uses the manifest's mounts as written, so its env id still matches.
func (l *Lock) HasRelativeMounts() bool {
	for _, m := range l.Mounts {
		if RelativeHostPath(m.HostPath) {
			return true
		}
	}
	return false
}
