package store_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

func pack(t *testing.T, dir string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := store.Pack(context.Background(), dir, &buf, nil); err != nil {
		t.Fatalf("Pack(%s): %v", dir, err)
	}
	return buf.Bytes()
}

func TestPackEmptyAndMissingDir(t *testing.T) {
	empty := pack(t, t.TempDir())
	if len(empty) != 1024 || !bytes.Equal(empty, make([]byte, 1024)) {
		t.Fatalf("empty dir packs to %d bytes", len(empty))
	}
	if got := schema.Sum(empty).String(); got != "d6fd9de5bccf223f523b316c9cd1cf9a9d87ea42473d68e011dad13f09bf8917" {
		t.Fatalf("empty archive blake3 %s", got)
	}
	if missing := pack(t, filepath.Join(t.TempDir(), "nope")); !bytes.Equal(missing, empty) {
		t.Fatal("missing dir does not pack as an empty archive")
	}
}

func TestPackHelloVector(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "hello.txt"), "hello world", 0o644)
	b := pack(t, dir)
	if len(b) != 2048 {
		t.Fatalf("archive is %d bytes, want 2048", len(b))
	}
	if got := string(b[148:156]); got != "0007544\x00" {
		t.Fatalf("checksum field %q", got)
	}
	if got := schema.Sum(b).String(); got != "16ba27231db37a61ab4f2db309d68450a6d25f20c17e05105e9572758b14e699" {
		t.Fatalf("hello archive blake3 %s", got)
	}
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func unpack(t *testing.T, archive []byte, target string, opts store.UnpackOptions) error {
	t.Helper()
	return store.Unpack(context.Background(), bytes.NewReader(archive), target, opts)
}

func TestPackUnpackRoundTrip(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "hello.txt"), "hello", 0o644)
	writeFile(t, filepath.Join(src, "bin", "tool"), "#!/bin/sh\n", 0o755)
	writeFile(t, filepath.Join(src, "data.bin"), string([]byte{0, 1, 2, 255, 254}), 0o600)
	writeFile(t, filepath.Join(src, "a", "b", "c", "deep.txt"), "deep", 0o644)
	if err := os.MkdirAll(filepath.Join(src, "empty"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello.txt", filepath.Join(src, "link_to_hello")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "ro"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(src, "ro", "f"), "x", 0o444)
	if err := os.Chmod(filepath.Join(src, "ro"), 0o555); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(src, "ro"), 0o755) })
	archive := pack(t, src)
	if again := pack(t, src); !bytes.Equal(archive, again) {
		t.Fatal("packing twice gives different bytes")
	}
	dst := filepath.Join(t.TempDir(), "new", "target")
	if err := unpack(t, archive, dst, store.UnpackOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(dst, "ro"), 0o755) })
	if got := pack(t, dst); !bytes.Equal(got, archive) {
		t.Fatal("unpacked tree packs to different bytes")
	}
	if target, err := os.Readlink(filepath.Join(dst, "link_to_hello")); err != nil || target != "hello.txt" {
		t.Fatalf("symlink %q, %v", target, err)
	}
	fi, _ := os.Stat(filepath.Join(dst, "empty"))
	if fi.Mode().Perm() != 0o750 {
		t.Fatalf("dir mode %v", fi.Mode().Perm())
	}
}

func TestPackDifferentContentDifferentHash(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(a, "f"), "one", 0o644)
	writeFile(t, filepath.Join(b, "f"), "two", 0o644)
	if bytes.Equal(pack(t, a), pack(t, b)) {
		t.Fatal("different content, same archive")
	}
	writeFile(t, filepath.Join(b, "f"), "one", 0o600)
	if bytes.Equal(pack(t, a), pack(t, b)) {
		t.Fatal("different mode, same archive")
	}
}

func TestPackSortsByFullPath(t *testing.T) {
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "a", "b"), "", 0o644)
	writeFile(t, filepath.Join(src, "a.txt"), "", 0o644)
	archive := pack(t, src)
	var names []string
	for off := 0; off+512 <= len(archive); off += 512 {
		h := archive[off : off+512]
		if h[0] == 0 {
			continue
		}
		names = append(names, string(bytes.TrimRight(h[:100], "\x00")))
	}
	want := []string{"a/", "a.txt", "a/b"}
	if len(names) != 3 || names[0] != want[0] || names[1] != want[1] || names[2] != want[2] {
		t.Fatalf("entry order %q, want %q", names, want)
	}
}

func TestUnpackEmptyInputAndGarbage(t *testing.T) {
	if err := unpack(t, nil, t.TempDir(), store.UnpackOptions{}); err != nil {
		t.Fatalf("0-byte archive: %v", err)
	}
	empty := t.TempDir()
	if err := unpack(t, pack(t, t.TempDir()), empty, store.UnpackOptions{}); err != nil {
		t.Fatalf("packed empty dir: %v", err)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatal("empty archive produced files")
	}
	dst := t.TempDir()
	err := unpack(t, bytes.Repeat([]byte("garbage!"), 100), dst, store.UnpackOptions{})
	entries, _ := os.ReadDir(dst)
	if err == nil && len(entries) != 0 {
		t.Fatal("garbage unpacked to files")
	}
	hello := t.TempDir()
	writeFile(t, filepath.Join(hello, "f"), "content", 0o644)
	archive := pack(t, hello)
	if err := unpack(t, archive[:700], t.TempDir(), store.UnpackOptions{}); err == nil {
		t.Fatal("truncated archive unpacked without error")
	}
}
