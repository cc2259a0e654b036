package sandbox

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// fakeFS is an in-memory host: files and their kinds, plus symlinks. Every ancestor of
// a listed path exists as a directory.
type fakeFS struct {
	kinds map[string]Kind
	links map[string]string // absolute link path -> target (absolute or relative)
}

func newFakeFS() *fakeFS {
	return &fakeFS{kinds: map[string]Kind{"/": Dir}, links: map[string]string{}}
}

func (f *fakeFS) add(path string, k Kind) *fakeFS {
	f.kinds[path] = k
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if _, ok := f.kinds[d]; !ok {
			f.kinds[d] = Dir
		}
		if d == "/" {
			break
		}
	}
	return f
}

func (f *fakeFS) link(path, target string) *fakeFS {
	f.add(filepath.Dir(path), Dir)
	f.links[path] = target
	return f
}

func (f *fakeFS) EvalSymlinks(path string) (string, error) {
	return f.eval(filepath.Clean(path), 0)
}

func (f *fakeFS) eval(path string, depth int) (string, error) {
	if depth > 40 {
		return "", fmt.Errorf("%s: too many links", path)
	}
	parts := strings.Split(strings.TrimPrefix(path, "/"), "/")
	cur := "/"
	for i, part := range parts {
		if part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		if t, ok := f.links[next]; ok {
			if !filepath.IsAbs(t) {
				t = filepath.Join(cur, t)
			}
			rest := filepath.Join(append([]string{t}, parts[i+1:]...)...)
			return f.eval(filepath.Clean(rest), depth+1)
		}
		if _, ok := f.kinds[next]; !ok {
			return "", &fs.PathError{Op: "lstat", Path: next, Err: fs.ErrNotExist}
		}
		cur = next
	}
	return cur, nil
}

func (f *fakeFS) Kind(path string) Kind {
	r, err := f.EvalSymlinks(path)
	if err != nil {
		return Missing
	}
	return f.kinds[r]
}
