package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/karapace/karapace/schema"
)

// DefaultTag is the tag of a reference that names none.
const DefaultTag = "latest"

// Registry is the remote's index of tags: "name@tag" -> Entry. Its JSON form is the
// original's: {"entries": {"<name>@<tag>": {...}}} with keys sorted.
type Registry struct {
	Entries map[string]Entry `json:"entries"`
}

// Entry is one tagged environment.
type Entry struct {
	EnvID    string `json:"env_id"`
	ShortID  string `json:"short_id"`
	Name     string `json:"name,omitempty"`
	PushedAt string `json:"pushed_at"`
}

// ParseRegistry decodes and validates a registry document: a JSON object whose entries
// have non-empty keys without control characters and full environment ids.
func ParseRegistry(data []byte) (*Registry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var r Registry
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("%w: invalid registry: %v", ErrProtocol, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: invalid registry: trailing data", ErrProtocol)
	}
	if r.Entries == nil {
		// {"entries": null} and {} are not what any writer produces; reject them so that
		// a typo cannot wipe the registry.
		return nil, fmt.Errorf("%w: invalid registry: no \"entries\" object", ErrProtocol)
	}
	for k, e := range r.Entries {
		// Keys are looser than ParseRef: the original client wrote whatever --tag said,
		// and such registries must stay readable and writable.
		if k == "" || len(k) > 512 || strings.IndexFunc(k, unicode.IsControl) >= 0 {
			return nil, fmt.Errorf("%w: invalid registry key %q", ErrProtocol, clip(k))
		}
		if _, err := schema.ParseEnvID(e.EnvID); err != nil {
			return nil, fmt.Errorf("%w: invalid registry entry %q: %v", ErrProtocol, clip(k), err)
		}
	}
	return &r, nil
}

// Marshal encodes the registry as the original does: pretty JSON, keys sorted.
func (r *Registry) Marshal() ([]byte, error) {
	c := *r
	if c.Entries == nil {
		c.Entries = map[string]Entry{}
	}
	return schema.MarshalPretty(&c)
}

// Lookup returns the entry for ref.
func (r *Registry) Lookup(ref Ref) (Entry, bool) {
	e, ok := r.Entries[ref.String()]
	return e, ok
}

// Ref is a registry reference, name@tag.
type Ref struct {
	Name string
	Tag  string
}

// String returns "name@tag", the registry key.
func (r Ref) String() string { return r.Name + "@" + r.Tag }

// ParseRef parses "name@tag" (split at the first '@') or "name", which means
// "name@latest". Both parts must be non-empty, at most 128 bytes, and free of whitespace
// and control characters. `push --tag NAME` and `pull NAME` both go through it, so they
// agree on NAME@latest.
func ParseRef(s string) (Ref, error) {
	name, tag, ok := strings.Cut(s, "@")
	if !ok {
		tag = DefaultTag
	}
	if err := checkRefPart("name", name); err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %v", ErrInvalidRef, clip(s), err)
	}
	if err := checkRefPart("tag", tag); err != nil {
		return Ref{}, fmt.Errorf("%w: %q: %v", ErrInvalidRef, clip(s), err)
	}
	return Ref{Name: name, Tag: tag}, nil
}

func checkRefPart(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if len(s) > 128 {
		return fmt.Errorf("%s longer than 128 bytes", what)
	}
	for _, c := range s {
		if unicode.IsSpace(c) || unicode.IsControl(c) || c == '/' || c == '\\' {
			return fmt.Errorf("%s contains %q", what, c)
		}
	}
	return nil
}

// Resolve turns a pull reference into an environment id: "name@tag" and "name" are
// looked up in the registry ("name" as "name@latest", then as the bare key "name" that
// the original client wrote for `push --tag name`); a 64-hex string that is not a registry key is taken as an
// environment id. A missing registry counts as empty; any other registry error is
// returned, never papered over by the env-id fallback.
func Resolve(ctx context.Context, reg RegistryStore, s string) (schema.EnvID, error) {
	ref, refErr := ParseRef(s)
	if refErr == nil {
		data, _, err := reg.GetRegistry(ctx)
		switch {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return schema.EnvID{}, fmt.Errorf("resolve %q: %w", clip(s), err)
		default:
			r, err := ParseRegistry(data)
			if err != nil {
				return schema.EnvID{}, fmt.Errorf("resolve %q: %w", clip(s), err)
			}
			if e, ok := r.Lookup(ref); ok {
				return schema.ParseEnvID(e.EnvID)
			}
			// The original client stored `push --tag foo` under the bare key "foo".
			if e, ok := r.Entries[s]; ok && !strings.Contains(s, "@") {
				return schema.ParseEnvID(e.EnvID)
			}
		}
	}
	if id, err := schema.ParseEnvID(s); err == nil {
		return id, nil
	}
	if refErr != nil {
		return schema.EnvID{}, refErr
	}
	return schema.EnvID{}, fmt.Errorf("registry key '%s': %w", ref, ErrNotFound)
}

// Publish sets ref to e in the registry. It reads, modifies and writes the document
// conditionally on the version it read, retrying when another writer got in between, so
// that concurrent pushes of different tags all land. A backend without versions (the
// original server) gets an unconditional write, as the original client does.
func Publish(ctx context.Context, reg RegistryStore, ref Ref, e Entry) error {
	const attempts = 20
	for i := 0; ; i++ {
		err := publishOnce(ctx, reg, ref, e)
		if err == nil || !errors.Is(err, ErrConflict) || i == attempts-1 {
			return err
		}
		t := time.NewTimer(time.Duration(i+1) * 5 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func publishOnce(ctx context.Context, reg RegistryStore, ref Ref, e Entry) error {
	data, version, err := reg.GetRegistry(ctx)
	r := &Registry{Entries: map[string]Entry{}}
	switch {
	case errors.Is(err, ErrNotFound):
		version = NoRegistry
	case err != nil:
		return fmt.Errorf("publish %s: %w", ref, err)
	default:
		if r, err = ParseRegistry(data); err != nil {
			return fmt.Errorf("publish %s: %w", ref, err)
		}
	}
	r.Entries[ref.String()] = e
	out, err := r.Marshal()
	if err != nil {
		return fmt.Errorf("publish %s: %w", ref, err)
	}
	if err := reg.PutRegistry(ctx, out, version); err != nil {
		return fmt.Errorf("publish %s: %w", ref, err)
	}
	return nil
}

// Timestamp formats t as the original's pushed_at (chrono's RFC 3339 with nanoseconds).
func Timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000-07:00")
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
