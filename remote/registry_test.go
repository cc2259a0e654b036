package remote

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/karapace/karapace/schema"
)

func TestParseRef(t *testing.T) {
	for _, c := range []struct {
		in, name, tag string
		ok            bool
	}{
		{"myapp", "myapp", "latest", true},
		{"myapp@v1", "myapp", "v1", true},
		{"myapp@latest", "myapp", "latest", true},
		{"a@b@c", "a", "b@c", true}, // split at the first '@', as the original
		{"", "", "", false},
		{"@v1", "", "", false},
		{"myapp@", "", "", false},
		{"my app", "", "", false},
		{"a/b", "", "", false},
		{"x\x00", "", "", false},
		{strings.Repeat("n", 129), "", "", false},
	} {
		r, err := ParseRef(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseRef(%q) error = %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if !c.ok {
			if !errors.Is(err, ErrInvalidRef) {
				t.Errorf("ParseRef(%q) error %v does not wrap ErrInvalidRef", c.in, err)
			}
			continue
		}
		if r.Name != c.name || r.Tag != c.tag || r.String() != c.name+"@"+c.tag {
			t.Errorf("ParseRef(%q) = %+v", c.in, r)
		}
	}
}

// The registry's bytes are the original's: serde_json pretty, BTreeMap key order, name
// omitted when absent.
func TestRegistryEncoding(t *testing.T) {
	r := &Registry{Entries: map[string]Entry{
		"b@latest": {EnvID: strings.Repeat("b", 64), ShortID: "bbbbbbbbbbbb", PushedAt: "2025-01-01T00:00:00+00:00"},
		"a@v1":     {EnvID: strings.Repeat("a", 64), ShortID: "aaaaaaaaaaaa", Name: "a", PushedAt: "2025-01-01T00:00:00+00:00"},
	}}
	got, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "entries": {
    "a@v1": {
      "env_id": "` + strings.Repeat("a", 64) + `",
      "short_id": "aaaaaaaaaaaa",
      "name": "a",
      "pushed_at": "2025-01-01T00:00:00+00:00"
    },
    "b@latest": {
      "env_id": "` + strings.Repeat("b", 64) + `",
      "short_id": "bbbbbbbbbbbb",
      "pushed_at": "2025-01-01T00:00:00+00:00"
    }
  }
}`
	if string(got) != want {
		t.Fatalf("registry JSON:\n%s\nwant:\n%s", got, want)
	}
	back, err := ParseRegistry(got)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Entries) != 2 || back.Entries["a@v1"] != r.Entries["a@v1"] {
		t.Fatalf("roundtrip: %+v", back)
	}
	// The original client's loose keys stay readable.
	if _, err := ParseRegistry([]byte(`{"entries": {"my tag": {"env_id": "` + strings.Repeat("a", 64) + `", "short_id": "", "pushed_at": ""}}}`)); err != nil {
		t.Fatalf("loose key refused: %v", err)
	}
	empty, _ := (&Registry{}).Marshal()
	if string(empty) != "{\n  \"entries\": {}\n}" {
		t.Fatalf("empty registry: %q", empty)
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"entries": null}`, `{"entries": {"a@b": {"env_id": "x"}}}`,
		`{"entries": {"": {"env_id": "` + strings.Repeat("a", 64) + `"}}}`, `{"entries": {}} {}`,
		`{"entries": {"a\u0000": {"env_id": "` + strings.Repeat("a", 64) + `"}}}`} {
		if _, err := ParseRegistry([]byte(bad)); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseRegistry(%q) = %v, want ErrProtocol", bad, err)
		}
	}
}

func TestTimestampFormat(t *testing.T) {
	ts := Timestamp(time.Date(2025, 1, 2, 3, 4, 5, 6, time.FixedZone("x", 3600)))
	if ts != "2025-01-02T02:04:05.000000006+00:00" {
		t.Fatalf("Timestamp = %q", ts)
	}
}

type failingRegistry struct{ err error }

func (f failingRegistry) GetRegistry(context.Context) ([]byte, string, error) { return nil, "", f.err }
func (f failingRegistry) PutRegistry(context.Context, []byte, string) error   { return f.err }

func TestResolve(t *testing.T) {
	ctx := context.Background()
	id := schema.SumString("x")
	// No registry at all: names are not found, ids pass through.
	empty := NewMemory()
	if got, err := Resolve(ctx, empty, id.String()); err != nil || got != id {
		t.Fatalf("Resolve(id) on empty remote = %v, %v", got, err)
	}
	if _, err := Resolve(ctx, empty, "name"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Resolve(name) on empty remote = %v", err)
	}
	// A network error is reported, never replaced by the env-id fallback.
	boom := errors.New("connection refused")
	if _, err := Resolve(ctx, failingRegistry{boom}, id.String()); !errors.Is(err, boom) {
		t.Fatalf("Resolve with a failing registry = %v", err)
	}
	// A registry key wins over the id reading of the same string.
	other := schema.SumString("y")
	if err := Publish(ctx, empty, Ref{Name: id.String(), Tag: "latest"}, Entry{EnvID: other.String(), ShortID: other.Short(), PushedAt: "t"}); err != nil {
		t.Fatal(err)
	}
	if got, err := Resolve(ctx, empty, id.String()); err != nil || got != other {
		t.Fatalf("Resolve(key that looks like an id) = %v, %v", got, err)
	}
	if _, err := Resolve(ctx, empty, "bad name"); !errors.Is(err, ErrInvalidRef) {
		t.Fatalf("Resolve(bad name) = %v", err)
	}
}

func TestConfig(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"HOME": filepath.Join(dir, "home")}
	getenv := func(k string) string { return env[k] }
	p, err := ConfigPath(getenv)
	if err != nil || p != filepath.Join(dir, "home", ".config", "karapace", "remote.json") {
		t.Fatalf("ConfigPath = %q, %v", p, err)
	}
	env["XDG_CONFIG_HOME"] = filepath.Join(dir, "xdg")
	p, _ = ConfigPath(getenv)
	if p != filepath.Join(dir, "xdg", "karapace", "remote.json") {
		t.Fatalf("ConfigPath with XDG_CONFIG_HOME = %q", p)
	}
	if _, err := ResolveConfig("", getenv); !errors.Is(err, ErrConfig) {
		t.Fatalf("ResolveConfig without file or flag = %v", err)
	}
	if c, err := ResolveConfig("http://h:1/", getenv); err != nil || c.URL != "http://h:1" || c.Token != "" {
		t.Fatalf("ResolveConfig flag only = %+v, %v", c, err)
	}
	if err := SaveConfig(p, Config{URL: "https://r.example/base/", Token: "s3cret"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(p)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("config file mode = %v, %v; want 0600", fi.Mode(), err)
	}
	raw, _ := os.ReadFile(p)
	if !strings.Contains(string(raw), `"auth_token": "s3cret"`) || !strings.Contains(string(raw), `"url": "https://r.example/base"`) {
		t.Fatalf("config file = %s", raw)
	}
	c, err := ResolveConfig("", getenv)
	if err != nil || c.URL != "https://r.example/base" || c.Token != "s3cret" {
		t.Fatalf("ResolveConfig from file = %+v, %v", c, err)
	}
	// --remote naming the configured server keeps its token; another server gets none.
	if c, _ := ResolveConfig("https://r.example/base/", getenv); c.Token != "s3cret" {
		t.Fatalf("same URL lost the token: %+v", c)
	}
	if c, _ := ResolveConfig("https://elsewhere", getenv); c.Token != "" || c.URL != "https://elsewhere" {
		t.Fatalf("other URL got the token: %+v", c)
	}
	// The original's file, and the "token" synonym.
	os.WriteFile(p, []byte(`{"url": "http://a/", "auth_token": null}`), 0o600)
	if c, err := LoadConfig(p); err != nil || c.URL != "http://a" || c.Token != "" {
		t.Fatalf("LoadConfig original form = %+v, %v", c, err)
	}
	os.WriteFile(p, []byte(`{"url": "http://a", "token": "t"}`), 0o600)
	if c, err := LoadConfig(p); err != nil || c.Token != "t" {
		t.Fatalf("LoadConfig token synonym = %+v, %v", c, err)
	}
	os.WriteFile(p, []byte(`{`), 0o600)
	if _, err := LoadConfig(p); !errors.Is(err, ErrConfig) {
		t.Fatalf("LoadConfig bad JSON = %v", err)
	}
}

func TestNewHTTPRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "x", "http://h/?q=1", "http://h/#f"} {
		if _, err := NewHTTP(Config{URL: u}, HTTPOptions{}); !errors.Is(err, ErrConfig) {
			t.Errorf("NewHTTP(%q) = %v, want ErrConfig", u, err)
		}
	}
}

func TestHTTPErrorClasses(t *testing.T) {
	for _, c := range []struct {
		e    *HTTPError
		want error
	}{
		{&HTTPError{Status: 404}, ErrNotFound},
		{&HTTPError{Status: 401}, ErrUnauthorized},
		{&HTTPError{Status: 403}, ErrUnauthorized},
		{&HTTPError{Status: 412}, ErrConflict},
		{&HTTPError{Status: 400, Class: "integrity"}, ErrIntegrity},
		{&HTTPError{Status: 400, Class: "invalid-key"}, ErrInvalidKey},
	} {
		if !errors.Is(c.e, c.want) {
			t.Errorf("%v does not match %v", c.e, c.want)
		}
	}
	e := &HTTPError{Method: "GET", URL: "http://h/x", Status: 500, Message: "disk full"}
	if !strings.Contains(e.Error(), "500") || !strings.Contains(e.Error(), "disk full") {
		t.Errorf("HTTPError text %q lacks status or message", e.Error())
	}
}

func TestKinds(t *testing.T) {
	for _, k := range Kinds {
		if r, ok := KindFromRoute(k.Route()); !ok || r != k {
			t.Errorf("route of %v", k)
		}
		if r, ok := KindFromName(k.String()); !ok || r != k {
			t.Errorf("name of %v", k)
		}
	}
	if Kind(7).Valid() || Kind(7).Route() != "" {
		t.Error("Kind(7) is valid")
	}
}

func TestDial(t *testing.T) {
	env := map[string]string{"HOME": t.TempDir()}
	if _, err := Dial("", func(k string) string { return env[k] }, nil); !errors.Is(err, ErrConfig) {
		t.Fatalf("Dial without config = %v", err)
	}
	h, err := Dial("http://127.0.0.1:8321/", func(k string) string { return env[k] }, nil)
	if err != nil || h.URL() != "http://127.0.0.1:8321" {
		t.Fatalf("Dial = %v, %v", h, err)
	}
}
