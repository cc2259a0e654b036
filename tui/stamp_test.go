package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestStampSeesEveryChange: a record replaced by a rename within the same clock tick,
// with the same size, still changes the stamp (the inode changes).
func TestStampSeesEveryChange(t *testing.T) {
	in := newInspector(t.TempDir())
	empty := in.stamp()
	dir := in.layout.MetadataDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "abc")
	write := func(content string) {
		tmp := p + ".tmp"
		if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		mt := time.Unix(1700000000, 0)
		if err := os.Chtimes(tmp, mt, mt); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, p); err != nil {
			t.Fatal(err)
		}
	}
	write("one")
	s1 := in.stamp()
	if s1 == empty {
		t.Fatal("a new record left the stamp unchanged")
	}
	write("two") // same size, same mtime, new inode
	if s2 := in.stamp(); s2 == s1 {
		t.Fatal("a replaced record left the stamp unchanged")
	}
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if s3 := in.stamp(); s3 == s1 {
		t.Fatal("a removed record left the stamp unchanged")
	}
}

// BenchmarkStamp measures the once-a-second check on a store of 1000 environments.
func BenchmarkStamp(b *testing.B) {
	in := newInspector(b.TempDir())
	dir := in.layout.MetadataDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%064x", i)), make([]byte, 400), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("just-changed", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			in.listing = ""
			in.stamp()
		}
	})
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(dir, old, old); err != nil {
		b.Fatal(err)
	}
	b.Run("steady", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			in.stamp()
		}
	})
}
