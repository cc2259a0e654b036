package store_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// modeOf is the permission and special bits of p, not following a final symlink.
func modeOf(t *testing.T, p string) fs.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

func wantModes(t *testing.T, want fs.FileMode, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if got := modeOf(t, p); got != want {
			t.Errorf("%s: mode %v, want %v", p, got, want)
		}
	}
}

// mkdirMode creates p and its parents, then sets p's mode whatever the umask.
func mkdirMode(t *testing.T, p string, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// oldStore lays out a store the way earlier versions did (every directory 0755), with
// one environment, its aside copy and the refs cache, and a symlink in env/ to a
// directory outside the store.
func oldStore(t *testing.T) (l store.Layout, id schema.EnvID, outside string) {
	t.Helper()
	base := t.TempDir()
	l = store.NewLayout(filepath.Join(base, "k"))
	if err := l.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	id = schema.SumString("env")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{
		l.Root(), l.StoreDir(), l.ObjectsDir(), l.StagingDir(), l.EnvDir(), l.EnvPath(id),
		l.UpperDir(id), l.EnvPath(id) + ".swap-old", filepath.Join(l.EnvDir(), ".refs"), outside,
	} {
		mkdirMode(t, d, 0o755)
	}
	if err := os.Symlink(outside, filepath.Join(l.EnvDir(), "link")); err != nil {
		t.Fatal(err)
	}
	return l, id, outside
}

func TestInitializeCreatesAPrivateStore(t *testing.T) {
	base := t.TempDir()
	// A --store whose parent does not exist yet: the parent is not the store's.
	l := store.NewLayout(filepath.Join(base, "parent", "k"))
	if err := l.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantModes(t, 0o700, l.Root(), l.StoreDir(), l.ObjectsDir(), l.LayersDir(), l.MetadataDir(),
		l.StagingDir(), l.EnvDir())
	wantModes(t, 0o755&^umask(t), filepath.Join(base, "parent"))
	// Directories made on first use are private too.
	st := store.New(filepath.Join(base, "lazy"), store.Options{})
	if _, err := st.Objects.PutBytes(context.Background(), []byte("x")); err != nil {
		t.Fatal(err)
	}
	wantModes(t, 0o700, st.Layout.Root(), st.Layout.StoreDir(), st.Layout.ObjectsDir())
}

func TestInitializeTightensAnExistingStore(t *testing.T) {
	l, id, outside := oldStore(t)
	parent := filepath.Dir(l.Root())
	mkdirMode(t, parent, 0o755)
	if err := os.Chmod(l.Root(), 0o775|fs.ModeSetgid); err != nil { // a group-shared directory
		t.Fatal(err)
	}
	if err := l.Initialize(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantModes(t, 0o700|fs.ModeSetgid, l.Root())
	wantModes(t, 0o700, l.StagingDir(), l.EnvDir(), l.EnvPath(id), l.EnvPath(id)+".swap-old",
		filepath.Join(l.EnvDir(), ".refs"))
	// The upper directory is the environment's "/": private through env/<id>, its mode
	// is what the environment's own users see. Neither the parent of the root nor what
	// a symlink points at is the store's.
	wantModes(t, 0o755, l.UpperDir(id), parent, outside)
}

func TestTightenFollowsASymlinkedRoot(t *testing.T) {
	l, _, _ := oldStore(t)
	link := filepath.Join(t.TempDir(), "store-link")
	if err := os.Symlink(l.Root(), link); err != nil {
		t.Fatal(err)
	}
	if err := store.NewLayout(link).Tighten(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantModes(t, 0o700, l.Root(), l.EnvDir())
}

func TestReadersKeepModes(t *testing.T) {
	ctx := context.Background()
	l, id, _ := oldStore(t)
	st := store.New(l.Root(), store.Options{})
	if err := l.VerifyVersion(); err != nil {
		t.Fatal(err)
	}
	lk, err := l.Lock(ctx, store.Shared)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Envs.List(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Graph(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lk.Unlock(); err != nil {
		t.Fatal(err)
	}
	wantModes(t, 0o755, l.Root(), l.StoreDir(), l.StagingDir(), l.EnvDir(), l.EnvPath(id), l.UpperDir(id))
}

func umask(t *testing.T) fs.FileMode {
	t.Helper()
	p := filepath.Join(t.TempDir(), "probe")
	if err := os.Mkdir(p, 0o777); err != nil {
		t.Fatal(err)
	}
	return 0o777 &^ modeOf(t, p)
}
