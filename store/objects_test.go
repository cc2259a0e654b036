package store_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
	"github.com/karapace/karapace/store/storetest"
)

func newLayout(t *testing.T) store.Layout {
	t.Helper()
	l := store.NewLayout(t.TempDir())
	if err := l.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	return l
}

func TestObjectsConformance(t *testing.T) {
	storetest.TestObjectStore(t, func(t *testing.T) store.ObjectStore { return store.NewObjects(newLayout(t)) })
}

func TestMemObjectsConformance(t *testing.T) {
	storetest.TestObjectStore(t, func(t *testing.T) store.ObjectStore { return storetest.NewMemObjects() })
}

func TestObjectCorruptionDetectedOnRead(t *testing.T) {
	ctx := context.Background()
	objs := store.NewObjects(newLayout(t))
	d, err := objs.PutBytes(ctx, []byte("original content"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(objs.Path(d), []byte("tampered content"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = objs.Get(ctx, d)
	var ie *store.IntegrityError
	if !errors.As(err, &ie) || !errors.Is(err, store.ErrIntegrity) || !errors.Is(err, store.ErrStore) {
		t.Fatalf("Get(corrupt) = %v, want an IntegrityError", err)
	}
	if ie.Expected != d.String() || ie.Actual != schema.SumString("tampered content").String() {
		t.Fatalf("IntegrityError fields %+v", ie)
	}
	if !strings.Contains(err.Error(), ie.Expected) || !strings.Contains(err.Error(), ie.Actual) {
		t.Fatalf("message %q lacks expected and actual", err)
	}
	r, err := objs.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, store.ErrIntegrity) {
		t.Fatalf("streaming a corrupt object ended with %v, want ErrIntegrity", err)
	}
}

func TestObjectTruncatedCopyIsDetectedAndRepairedByPut(t *testing.T) {
	ctx := context.Background()
	objs := store.NewObjects(newLayout(t))
	data := bytes.Repeat([]byte("abc"), 100000)
	d, err := objs.PutBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(objs.Path(d), 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := objs.Get(ctx, d); !errors.Is(err, store.ErrIntegrity) {
		t.Fatalf("Get(truncated) = %v", err)
	}
	if _, err := objs.PutBytes(ctx, data); err != nil {
		t.Fatal(err)
	}
	if got, err := objs.Get(ctx, d); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("after re-put: %v", err)
	}
}

func TestObjectFilesAre0644AndTempFilesHidden(t *testing.T) {
	ctx := context.Background()
	l := newLayout(t)
	objs := store.NewObjects(l)
	d, err := objs.PutBytes(ctx, []byte("mode"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(objs.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Fatalf("object mode %v, want 0644", fi.Mode().Perm())
	}
	if err := os.WriteFile(filepath.Join(l.ObjectsDir(), ".tmpABCDEF"), []byte("junk"), 0o600); err != nil {
		t.Fatal(err)
	}
	ds, err := objs.List(ctx)
	if err != nil || len(ds) != 1 || ds[0] != d {
		t.Fatalf("List = %v, %v; want only %s", ds, err, d.Short())
	}
	entries, _ := os.ReadDir(l.ObjectsDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") && e.Name() != ".tmpABCDEF" {
			t.Fatalf("Put left temp file %s", e.Name())
		}
	}
}

func TestObjectFailedPutLeavesNoTempFile(t *testing.T) {
	l := newLayout(t)
	objs := store.NewObjects(l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := objs.PutBytes(ctx, []byte("x")); err == nil {
		t.Fatal("cancelled put succeeded")
	}
	entries, _ := os.ReadDir(l.ObjectsDir())
	if len(entries) != 0 {
		t.Fatalf("objects dir holds %d entries after a failed put", len(entries))
	}
}

func TestObjectGetMissing(t *testing.T) {
	objs := store.NewObjects(newLayout(t))
	_, err := objs.Get(context.Background(), schema.SumString("nope"))
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(missing) = %v", err)
	}
}

func TestObjectPutLarge64KiBAndDeterministic(t *testing.T) {
	ctx := context.Background()
	objs := store.NewObjects(newLayout(t))
	data := bytes.Repeat([]byte{0xab}, 64*1024)
	d1, err := objs.PutBytes(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	if d1 != schema.Sum(data) {
		t.Fatal("digest is not blake3 of the data")
	}
	got, err := objs.Get(ctx, d1)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get: %v", err)
	}
}

func TestVerifyingReaderOverAnyStream(t *testing.T) {
	data := bytes.Repeat([]byte("stream"), 300000)
	want := schema.Sum(data)
	r := store.NewVerifyingReader(context.Background(), bytes.NewReader(data), -1, want, "blob")
	var got bytes.Buffer
	if _, err := io.Copy(&got, r); err != nil || !bytes.Equal(got.Bytes(), data) || r.N() != int64(len(data)) {
		t.Fatalf("copy: %v, %d bytes", err, r.N())
	}
	bad := store.NewVerifyingReader(context.Background(), bytes.NewReader(data[1:]), int64(len(data)), want, "blob")
	_, err := io.ReadAll(bad)
	var ie *store.IntegrityError
	if !errors.As(err, &ie) || ie.What != "blob" {
		t.Fatalf("corrupt stream: %v", err)
	}
}
