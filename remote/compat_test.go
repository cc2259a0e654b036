package remote_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/karapace/karapace/remote"
	"github.com/karapace/karapace/remote/remotetest"
)

// originalServer behaves as the original karapace-server does on the wire (spec 5.7):
// raw paths as keys, no verification, no ETag, 200 "ok" on PUT, 404 "not found",
// list as a JSON array in any order, the registry stored verbatim.
type originalServer struct {
	mu      sync.Mutex
	blobs   map[string][]byte
	reg     []byte
	sawV1   bool
	without []string // requests without the protocol header
	auth    []string // Authorization headers seen
}

func (o *originalServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if r.Header.Get("X-Karapace-Protocol") == "1" {
		o.sawV1 = true
	} else {
		o.without = append(o.without, r.Method+" "+r.URL.Path)
	}
	o.auth = append(o.auth, r.Header.Get("Authorization"))
	path := r.URL.Path
	if path == "/registry" {
		switch r.Method {
		case "PUT":
			o.reg, _ = io.ReadAll(r.Body)
			io.WriteString(w, "ok")
		case "GET":
			if o.reg == nil {
				http.Error(w, "not found", 404)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(o.reg)
		}
		return
	}
	kind, key, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if key == "" {
		var keys []string
		for k := range o.blobs {
			if strings.HasPrefix(k, "/"+kind+"/") {
				keys = append(keys, strings.TrimPrefix(k, "/"+kind+"/"))
			}
		}
		sort.Sort(sort.Reverse(sort.StringSlice(keys)))
		json.NewEncoder(w).Encode(keys)
		return
	}
	switch r.Method {
	case "PUT":
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "read error", 500) // as the original: nothing stored
			return
		}
		o.blobs[path] = b
		io.WriteString(w, "ok")
	case "GET":
		b, ok := o.blobs[path]
		if !ok {
			http.Error(w, "not found", 404)
			return
		}
		w.Write(b)
	case "HEAD":
		if _, ok := o.blobs[path]; !ok {
			w.WriteHeader(404)
		}
	}
}

func TestClientAgainstOriginalStyleServer(t *testing.T) {
	ctx := context.Background()
	orig := &originalServer{blobs: map[string][]byte{}}
	hs := httptest.NewServer(orig)
	defer hs.Close()
	c, err := remote.NewHTTP(remote.Config{URL: hs.URL}, remote.HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := remotetest.NewFixture(t, "compat", 100<<10)
	ref := remote.Ref{Name: "compat", Tag: "latest"}
	if _, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{Tag: &ref}); err != nil {
		t.Fatalf("push to an original-style server: %v", err)
	}
	if !orig.sawV1 || len(orig.without) != 0 {
		t.Fatalf("requests without X-Karapace-Protocol: 1: %v", orig.without)
	}
	for _, a := range orig.auth {
		if a != "" {
			t.Fatalf("Authorization %q sent without a token", a)
		}
	}
	// The registry document is the original's shape.
	var doc struct {
		Entries map[string]map[string]string `json:"entries"`
	}
	if err := json.Unmarshal(orig.reg, &doc); err != nil || doc.Entries["compat@latest"]["env_id"] != f.ID.String() {
		t.Fatalf("registry = %s (%v)", orig.reg, err)
	}
	// Layer blobs hash to their key (the original's pretty JSON).
	for _, l := range f.Layers {
		if b := orig.blobs["/layers/"+l.String()]; b == nil {
			t.Fatalf("layer %s not pushed", l.Short())
		}
	}
	id, err := remote.Resolve(ctx, c, "compat")
	if err != nil || id != f.ID {
		t.Fatalf("resolve: %v", err)
	}
	dst := remotetest.EmptyStore(t)
	if _, err := remote.Pull(ctx, c, remote.NewLocal(dst, nil), id, remote.PullOptions{}); err != nil {
		t.Fatalf("pull from an original-style server: %v", err)
	}
	remotetest.CheckPulled(t, f.Store, dst, f.ID)
	keys, err := c.ListBlobs(ctx, remote.Object)
	if err != nil || len(keys) != 3 || !sort.StringsAreSorted(keys) {
		t.Fatalf("list = %v, %v", keys, err)
	}
}

func TestTokenSentAsBearer(t *testing.T) {
	orig := &originalServer{blobs: map[string][]byte{}}
	hs := httptest.NewServer(orig)
	defer hs.Close()
	c, _ := remote.NewHTTP(remote.Config{URL: hs.URL, Token: "tok"}, remote.HTTPOptions{})
	ctx := context.Background()
	k := strings.Repeat("a", 64)
	c.HasBlob(ctx, remote.Object, k)
	c.GetBlob(ctx, remote.Layer, k)
	c.PutBlob(ctx, remote.Object, k, strings.NewReader("x"), 1)
	c.GetRegistry(ctx)
	if len(orig.auth) != 4 {
		t.Fatalf("%d requests", len(orig.auth))
	}
	for _, a := range orig.auth {
		if a != "Bearer tok" {
			t.Fatalf("Authorization = %q", a)
		}
	}
}

func TestConnectionRefusedIsAnError(t *testing.T) {
	c, _ := remote.NewHTTP(remote.Config{URL: "http://127.0.0.1:1"}, remote.HTTPOptions{})
	ctx := context.Background()
	k := strings.Repeat("a", 64)
	if has, err := c.HasBlob(ctx, remote.Object, k); err == nil || has {
		t.Fatalf("HasBlob against a closed port = %v, %v", has, err)
	}
	if _, err := remote.Resolve(ctx, c, k); err == nil {
		t.Fatal("Resolve against a closed port fell back to the id")
	}
}

func TestRedirectedPutIsAFailure(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere"+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer hs.Close()
	c, _ := remote.NewHTTP(remote.Config{URL: hs.URL}, remote.HTTPOptions{})
	k := strings.Repeat("a", 64)
	if err := c.PutBlob(context.Background(), remote.Object, k, strings.NewReader("x"), 1); err == nil {
		t.Fatal("PUT answered by a redirect counted as stored")
	}
}

// Against a server that does not verify uploads (the original), Push hashes every blob
// itself and aborts the upload of a local blob that rotted: the remote never stores it.
func TestPushToNonVerifyingServerHashesLocally(t *testing.T) {
	ctx := context.Background()
	orig := &originalServer{blobs: map[string][]byte{}}
	hs := httptest.NewServer(orig)
	defer hs.Close()
	c, _ := remote.NewHTTP(remote.Config{URL: hs.URL}, remote.HTTPOptions{})
	f := remotetest.NewFixture(t, "rot", 2<<20)
	bad := append([]byte(nil), f.Tar...)
	bad[7] ^= 1
	if err := os.WriteFile(f.Store.Objects.Path(f.TarKey), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := remote.Push(ctx, remote.NewLocal(f.Store, nil), c, f.ID, remote.PushOptions{})
	if !errors.Is(err, remote.ErrIntegrity) {
		t.Fatalf("push of a rotten object: %v, want ErrIntegrity", err)
	}
	if c.UploadsVerified() {
		t.Fatal("the original-style server claimed to verify uploads")
	}
	orig.mu.Lock()
	defer orig.mu.Unlock()
	if _, ok := orig.blobs["/objects/"+f.TarKey.String()]; ok {
		t.Fatal("rotten object stored on the remote")
	}
	if _, ok := orig.blobs["/metadata/"+f.ID.String()]; ok {
		t.Fatal("metadata stored although an object failed")
	}
}
