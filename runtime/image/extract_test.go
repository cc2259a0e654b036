package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

type tentry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func file(name, body string) tentry {
	return tentry{name: name, body: body, typ: tar.TypeReg, mode: 0o644}
}
func dir(name string) tentry { return tentry{name: name, typ: tar.TypeDir, mode: 0o755} }
func symlink(name, to string) tentry {
	return tentry{name: name, link: to, typ: tar.TypeSymlink, mode: 0o777}
}
func hardlink(name, to string) tentry {
	return tentry{name: name, link: to, typ: tar.TypeLink, mode: 0o644}
}

func makeTar(t testing.TB, entries ...tentry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Size: int64(len(e.body)),
			Uid: 1234, Gid: 5678, ModTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Format: tar.FormatPAX}
		if e.typ != tar.TypeReg {
			hdr.Size = 0
		}
		if e.typ == tar.TypeChar || e.typ == tar.TypeBlock {
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressAs(t testing.TB, data []byte, c Compression) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch c {
	case CompressionNone:
		return data
	case CompressionGzip:
		w = gzip.NewWriter(&buf)
	case CompressionXz:
		w, err = xz.NewWriter(&buf)
	case CompressionZstd:
		w, err = zstd.NewWriter(&buf)
	default:
		t.Fatalf("no writer for %s", c)
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func sampleTree() []tentry {
	return []tentry{
		dir("./"), dir("./etc/"), file("./etc/os-release", "ID=test\n"),
		dir("./usr/"), dir("./usr/bin/"), {name: "./usr/bin/tool", body: "#!/bin/sh\necho hi\n", typ: tar.TypeReg, mode: 0o755},
		symlink("./bin", "usr/bin"), hardlink("./usr/bin/tool2", "./usr/bin/tool"),
		symlink("./etc/abs", "/usr/bin/tool"), // absolute targets are fine as link text
		{name: "./tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "./ro/", typ: tar.TypeDir, mode: 0o555}, file("./ro/file", "x"),
		{name: "./etc/shadow", body: "secret", typ: tar.TypeReg, mode: 0o000},
	}
}

func quietOpts() extractOptions { return extractOptions{log: slog.New(slog.DiscardHandler)} }

func TestExtractEachCompression(t *testing.T) {
	raw := makeTar(t, sampleTree()...)
	var digests []string
	for _, c := range []Compression{CompressionNone, CompressionGzip, CompressionXz, CompressionZstd} {
		t.Run(string(c), func(t *testing.T) {
			data := compressAs(t, raw, c)
			if got := DetectCompression(data); got != c {
				t.Errorf("DetectCompression = %s, want %s", got, c)
			}
			dst := t.TempDir()
			st, err := extract(context.Background(), bytes.NewReader(data), dst, quietOpts())
			if err != nil {
				t.Fatal(err)
			}
			if st.Compression != c || st.Files != 4 || st.Symlinks != 2 || st.Hardlinks != 1 {
				t.Errorf("stats %+v", st)
			}
			checkSampleTree(t, dst)
			d, err := TreeDigest(context.Background(), dst)
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, d.String())
		})
	}
	for _, d := range digests[1:] {
		if d != digests[0] {
			t.Errorf("tree digests differ across compressions: %v", digests)
		}
	}
}

// TestExtractXzProgram checks the xz program path against the Go decoder, and that a
// corrupt stream fails even when the tar reader could not tell.
func TestExtractXzProgram(t *testing.T) {
	xzPath, err := exec.LookPath("xz")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("REQUIRED COMPONENT MISSING (CI=true): xz (xz-utils)")
		}
		t.Skip("SKIPPING: xz is not installed (apt-get install xz-utils); this test fails under CI=true")
	}
	raw := makeTar(t, sampleTree()...)
	data := compressAs(t, raw, CompressionXz)
	var digests [2]string
	for i, p := range []string{"", xzPath} {
		dst := t.TempDir()
		opts := quietOpts()
		opts.xzPath = p
		st, err := extract(context.Background(), bytes.NewReader(data), dst, opts)
		if err != nil || st.Compression != CompressionXz {
			t.Fatalf("xz via %q: %v %+v", p, err, st)
		}
		checkSampleTree(t, dst)
		d, _ := TreeDigest(context.Background(), dst)
		digests[i] = d.String()
	}
	if digests[0] != digests[1] {
		t.Errorf("Go decoder and xz program disagree: %v", digests)
	}
	// Damage the stream's check field at the end: the tar data is intact, only xz
	// knows the stream is bad.
	bad := append([]byte(nil), data...)
	bad[len(bad)-20] ^= 0xff
	opts := quietOpts()
	opts.xzPath = xzPath
	if _, err := extract(context.Background(), bytes.NewReader(bad), t.TempDir(), opts); !errors.Is(err, ErrUnsafeArchive) {
		t.Errorf("corrupt xz: %v, want ErrUnsafeArchive", err)
	}
	if _, err := extract(context.Background(), bytes.NewReader(data[:len(data)/2]), t.TempDir(), opts); !errors.Is(err, ErrUnsafeArchive) {
		t.Errorf("truncated xz: %v, want ErrUnsafeArchive", err)
	}
}

func checkSampleTree(t *testing.T, dst string) {
	t.Helper()
	if b, _ := os.ReadFile(filepath.Join(dst, "bin/tool")); string(b) != "#!/bin/sh\necho hi\n" {
		t.Errorf("bin/tool through the symlink = %q", b)
	}
	a, _ := os.Stat(filepath.Join(dst, "usr/bin/tool"))
	b, _ := os.Stat(filepath.Join(dst, "usr/bin/tool2"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("tool2 is not a hard link of tool")
	}
	if a != nil && a.Mode().Perm() != 0o755 {
		t.Errorf("tool mode %v", a.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dst, "tmp")); fi == nil || fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 {
		t.Errorf("tmp mode %v, want sticky 0777", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dst, "ro")); fi == nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("read-only dir mode %v, want u+w added: 0755", fi.Mode())
	}
	if fi, _ := os.Stat(filepath.Join(dst, "etc/shadow")); fi == nil || fi.Mode().Perm() != 0o400 {
		t.Errorf("etc/shadow mode %v, want u+r added: 0400", fi.Mode())
	}
	if l, _ := os.Readlink(filepath.Join(dst, "etc/abs")); l != "/usr/bin/tool" {
		t.Errorf("etc/abs -> %q", l)
	}
	fi, _ := os.Stat(filepath.Join(dst, "etc/os-release"))
	if fi == nil || !fi.ModTime().Equal(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("mtime not restored: %v", fi)
	}
	// Ownership is never restored: everything belongs to the caller.
	if st, ok := sysStat(fi); ok && int(st.Uid) != os.Getuid() {
		t.Errorf("os-release owned by %d, want the caller %d", st.Uid, os.Getuid())
	}
}

func TestExtractHostile(t *testing.T) {
	cases := map[string][]tentry{
		"traversal":          {dir("./etc/"), file("./etc/../../escape", "x")},
		"traversal-cleaned":  {file("a/../../escape", "x")},
		"absolute":           {file("/tmp/karapace-escape-test", "x")},
		"symlink-escape":     {symlink("./evil", "/"), file("./evil/tmp/karapace-escape-test", "x")},
		"symlink-rel-escape": {dir("./a/"), symlink("./a/up", "../../.."), file("./a/up/karapace-escape-test", "x")},
		"symlink-then-dir":   {symlink("./evil", "/tmp"), dir("./evil/karapace-escape-dir/")},
		"hardlink-outside":   {hardlink("./passwd", "../../../etc/passwd")},
		"hardlink-absolute":  {hardlink("./passwd", "/etc/passwd")},
		"hardlink-via-link":  {symlink("./etc", "/etc"), hardlink("./passwd", "./etc/passwd")},
		"not-a-tar":          nil,
	}
	for name, entries := range cases {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "rootfs")
			os.Mkdir(dst, 0o755)
			data := []byte(strings.Repeat("garbage!", 200))
			if entries != nil {
				data = makeTar(t, entries...)
			}
			_, err := extract(context.Background(), bytes.NewReader(data), dst, quietOpts())
			if !errors.Is(err, ErrUnsafeArchive) {
				t.Errorf("err = %v, want ErrUnsafeArchive", err)
			}
			for _, p := range []string{filepath.Join(parent, "escape"), "/tmp/karapace-escape-test", "/karapace-escape-test", "/tmp/karapace-escape-dir"} {
				if _, err := os.Lstat(p); err == nil {
					os.RemoveAll(p)
					t.Errorf("%s was created outside the target", p)
				}
			}
		})
	}
}

func TestExtractSkipsDevicesAndFifos(t *testing.T) {
	dst := t.TempDir()
	data := makeTar(t, dir("./dev/"), tentry{name: "./dev/null", typ: tar.TypeChar, mode: 0o666},
		tentry{name: "./dev/sda", typ: tar.TypeBlock, mode: 0o660}, tentry{name: "./dev/fifo", typ: tar.TypeFifo, mode: 0o644},
		file("./etc/hostname", "h\n"))
	st, err := extract(context.Background(), bytes.NewReader(data), dst, quietOpts())
	if err != nil {
		t.Fatal(err)
	}
	if st.SkippedSpecial != 3 {
		t.Errorf("SkippedSpecial = %d, want 3", st.SkippedSpecial)
	}
	entries, _ := os.ReadDir(filepath.Join(dst, "dev"))
	if len(entries) != 0 {
		t.Errorf("dev/ holds %v", entries)
	}
	if _, err := os.Stat(filepath.Join(dst, "etc/hostname")); err != nil {
		t.Error(err)
	}
}

func TestExtractSetID(t *testing.T) {
	data := makeTar(t, tentry{name: "./su", body: "x", typ: tar.TypeReg, mode: 0o4755},
		tentry{name: "./sg", body: "x", typ: tar.TypeReg, mode: 0o2755}, tentry{name: "./d/", typ: tar.TypeDir, mode: 0o2775})
	for _, keep := range []bool{false, true} {
		dst := t.TempDir()
		opts := quietOpts()
		opts.keepSetID = keep
		st, err := extract(context.Background(), bytes.NewReader(data), dst, opts)
		if err != nil {
			t.Fatal(err)
		}
		su, _ := os.Stat(filepath.Join(dst, "su"))
		sg, _ := os.Stat(filepath.Join(dst, "sg"))
		if keep {
			if su.Mode()&os.ModeSetuid == 0 || sg.Mode()&os.ModeSetgid == 0 || st.DroppedSetID != 0 {
				t.Errorf("keep: su %v sg %v dropped %d", su.Mode(), sg.Mode(), st.DroppedSetID)
			}
		} else {
			if su.Mode()&os.ModeSetuid != 0 || sg.Mode()&os.ModeSetgid != 0 || st.DroppedSetID != 2 {
				t.Errorf("drop: su %v sg %v dropped %d", su.Mode(), sg.Mode(), st.DroppedSetID)
			}
			if su.Mode().Perm() != 0o755 {
				t.Errorf("permission bits lost with setuid: %v", su.Mode())
			}
		}
	}
}

func TestExtractReplacesDuplicates(t *testing.T) {
	dst := t.TempDir()
	data := makeTar(t, file("./a", "one"), symlink("./a", "elsewhere"), file("./a", "two"), file("./b", "x"), dir("./b/"))
	if _, err := extract(context.Background(), bytes.NewReader(data), dst, quietOpts()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "a")); string(b) != "two" {
		t.Errorf("a = %q, want the last member", b)
	}
	if fi, _ := os.Lstat(filepath.Join(dst, "b")); fi == nil || !fi.IsDir() {
		t.Error("b is not a directory")
	}
}

func TestExtractCancelled(t *testing.T) {
	var entries []tentry
	for i := 0; i < 600; i++ {
		entries = append(entries, file("./f"+strings.Repeat("x", i%50)+string(rune('a'+i%26)), "x"))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := extract(ctx, bytes.NewReader(makeTar(t, entries...)), t.TempDir(), quietOpts())
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestTreeDigestSeesContentModeAndLinks(t *testing.T) {
	dst := t.TempDir()
	if _, err := extract(context.Background(), bytes.NewReader(makeTar(t, sampleTree()...)), dst, quietOpts()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	base, _ := TreeDigest(ctx, dst)
	again, _ := TreeDigest(ctx, dst)
	if base != again {
		t.Fatal("tree digest not stable")
	}
	changes := []func(){
		func() { os.WriteFile(filepath.Join(dst, "etc/os-release"), []byte("ID=evil\n"), 0o644) },
		func() { os.Chmod(filepath.Join(dst, "usr/bin/tool"), os.ModeSetuid|0o755) },
		func() {
			os.Remove(filepath.Join(dst, "etc/abs"))
			os.Symlink("/elsewhere", filepath.Join(dst, "etc/abs"))
		},
		func() { os.WriteFile(filepath.Join(dst, "new"), nil, 0o644) },
	}
	seen := map[string]bool{base.String(): true}
	for i, change := range changes {
		change()
		d, err := TreeDigest(ctx, dst)
		if err != nil {
			t.Fatal(err)
		}
		if seen[d.String()] {
			t.Errorf("change %d did not change the tree digest", i)
		}
		seen[d.String()] = true
	}
}
