package core

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/karapace/karapace/runtime/sandbox"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// Drift against the built state. An environment's base layer is its writable layer as
// the build left it (the packages it installed); what changed since is the difference
// between that layer and the writable layer now. Both sides are read in the same form,
// the deterministic tar store.Pack writes (whiteouts as ".wh." files, opaque directories
// with a marker), so a tree that did not change compares equal whatever overlay
// implementation wrote it. Directories are not reported, as in the original.

// treeEntry is one non-directory member of a packed tree.
type treeEntry struct {
	kind   byte // 'f' regular file, 'l' symlink, 'w' whiteout, 'o' opaque marker
	mode   int64
	size   int64
	link   string
	sum    schema.Digest
	hashed bool
}

func (a treeEntry) same(b treeEntry) bool {
	if a.kind != b.kind || a.mode != b.mode || a.size != b.size || a.link != b.link {
		return false
	}
	return a.kind != 'f' || (a.hashed && b.hashed && a.sum == b.sum)
}

// readTree reads a packed tree into its entries, keyed by path (a whiteout by the path
// it removes, an opaque marker by its directory). Regular files are hashed when hash
// says so.
func readTree(ctx context.Context, r io.Reader, hash func(name string, size int64) bool) (map[string]treeEntry, error) {
	out := map[string]treeEntry{}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/")
		base := path.Base(name)
		e := treeEntry{mode: h.Mode, size: h.Size, link: h.Linkname}
		switch {
		case h.Typeflag == tar.TypeDir:
			continue
		case base == store.OpaqueMarker:
			e.kind, name = 'o', path.Dir(name)
		case strings.HasPrefix(base, store.WhiteoutPrefix):
			e.kind, name = 'w', path.Join(path.Dir(name), strings.TrimPrefix(base, store.WhiteoutPrefix))
		case h.Typeflag == tar.TypeSymlink:
			e.kind = 'l'
		default:
			e.kind = 'f'
			if hash == nil || hash(name, h.Size) {
				hs := schema.Hasher()
				if _, err := io.Copy(hs, tr); err != nil {
					return nil, err
				}
				copy(e.sum[:], hs.Sum(nil))
				e.hashed = true
			}
		}
		out[name] = e
	}
}

// builtTree reads the tree of a base layer's tar object. ok is false when the record
// has no base layer with content (a Defined record, or a legacy layer).
func (e *Engine) builtTree(ctx context.Context, m *Env) (map[string]treeEntry, bool, error) {
	if m.BaseLayer == "" {
		return nil, false, nil
	}
	k, err := schema.ParseDigest(m.BaseLayer)
	if err != nil {
		return nil, false, fmt.Errorf("%w: base layer: %v", store.ErrCorrupt, err)
	}
	l, err := e.st.layerGet(ctx, k)
	if err != nil {
		return nil, false, fmt.Errorf("base layer %s: %w", k, err)
	}
	if l.TarHash.IsZero() {
		return nil, false, nil
	}
	r, err := e.st.objects.Open(ctx, l.TarHash)
	if err != nil {
		return nil, false, fmt.Errorf("base layer %s: %w", k, err)
	}
	defer r.Close()
	t, err := readTree(ctx, r, nil)
	if err != nil {
		return nil, false, fmt.Errorf("base layer %s: %w", k, err)
	}
	return t, true, nil
}

// upperTree packs the writable layer as a stream and reads it; regular files are
// hashed only where the built state has a file of the same size to compare with.
func (e *Engine) upperTree(ctx context.Context, upper string, built map[string]treeEntry) (map[string]treeEntry, error) {
	if _, err := os.Lstat(upper); errors.Is(err, os.ErrNotExist) {
		return map[string]treeEntry{}, nil
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(store.Pack(ctx, upper, pw, e.log)) }()
	t, err := readTree(ctx, pr, func(name string, size int64) bool {
		b, ok := built[name]
		return ok && b.kind == 'f' && b.size == size
	})
	pr.CloseWithError(err)
	return t, err
}

// mountPoints lists the files a session's launcher may create as bind mount points in
// the writable layer (relative, slash-separated): resolv.conf, hosts, hostname, the apt setting
// for single-id sessions, and the manifest's mounts. Empty ones are not changes.
func mountPoints(n *schema.Normalized) map[string]bool {
	out := map[string]bool{}
	for _, p := range []string{"/etc/resolv.conf", "/etc/hosts", "/etc/hostname", sandbox.AptSingleIDTarget} {
		out[strings.TrimPrefix(p, "/")] = true
	}
	if n != nil {
		for _, m := range n.Mounts {
			out[strings.TrimPrefix(path.Clean("/"+m.ContainerPath), "/")] = true
		}
	}
	return out
}

// compareTrees classifies every path where upper differs from built. lower answers
// whether the image has a path; ignore drops empty mount points the launcher made.
func compareTrees(upper, built map[string]treeEntry, lower func(string) bool, lowerDir func(string) []string, ignore map[string]bool) (added, modified, removed []string) {
	added, modified, removed = []string{}, []string{}, []string{}
	for p, u := range upper {
		b, inBuilt := built[p]
		switch {
		case u.kind == 'o':
			if inBuilt && b.kind == 'o' {
				continue
			}
			// A directory made opaque since the build hides what the image had there.
			for _, name := range lowerDir(p) {
				rel := path.Join(p, name)
				if _, ok := upper[rel]; !ok {
					removed = append(removed, rel)
				}
			}
		case u.kind == 'w':
			if !inBuilt || b.kind != 'w' {
				removed = append(removed, p)
			}
		case inBuilt && u.same(b):
		case inBuilt && b.kind == 'w':
			added = append(added, p)
		case inBuilt:
			modified = append(modified, p)
		case lower(p):
			modified = append(modified, p)
		case u.kind == 'f' && u.size == 0 && ignore[p]:
		default:
			added = append(added, p)
		}
	}
	for p, b := range built {
		if _, ok := upper[p]; ok || b.kind == 'o' {
			continue
		}
		switch {
		case b.kind == 'w':
			if lower(p) {
				added = append(added, p) // the image's file shows again
			}
		case lower(p):
			modified = append(modified, p) // the image's version shows again
		default:
			removed = append(removed, p)
		}
	}
	sort.Strings(added)
	sort.Strings(modified)
	sort.Strings(removed)
	return added, modified, dedup(removed)
}

// diffBuilt compares an environment's writable layer with its built state.
func (e *Engine) diffBuilt(ctx context.Context, m *Env, built map[string]treeEntry) (added, modified, removed []string, err error) {
	id := m.EnvID
	up, err := e.upperTree(ctx, e.layout.UpperDir(id), built)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("diff %s: %w", e.layout.UpperDir(id), err)
	}
	low := openLower(e.layout.LowerDir(id))
	if low != nil {
		defer low.Close()
	}
	inLower := func(rel string) bool { return hasPath(low, rel) }
	lowerDir := func(rel string) []string { return lowerNames(low, rel) }
	n, _ := e.st.manifest(ctx, m.ManifestHash)
	a, mod, r := compareTrees(up, built, inLower, lowerDir, mountPoints(n))
	return a, mod, r, nil
}
