package core

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// CommitOptions are the optional settings of Commit.
type CommitOptions struct {
	// Message is a note kept with the snapshot and shown by Snapshots.
	Message string
}

// A snapshot's time and message are not in its layer: the layer's JSON is hashed into
// the key restore takes (and the original computes that key the same way), so they
// live beside the environment, in env/<id>/snapshots/<key>.json. The original ignores
// the directory; a snapshot without a note shows its layer file's time.
const snapshotNotesDir = "snapshots"

type snapshotNote struct {
	CreatedAt string `json:"created_at"`
	Message   string `json:"message,omitempty"`
}

func (e *Engine) notePath(id schema.EnvID, key schema.Digest) string {
	return filepath.Join(e.layout.EnvPath(id), snapshotNotesDir, key.String()+".json")
}

// writeNote records a commit's time and message. A re-commit of unchanged content
// without a message keeps the note it has.
func (e *Engine) writeNote(id schema.EnvID, key schema.Digest, msg string) error {
	p := e.notePath(id, key)
	if _, err := os.Stat(p); err == nil && msg == "" {
		return nil
	}
	b, err := json.Marshal(snapshotNote{CreatedAt: e.st.timestamp(), Message: msg})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, p); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

// describe fills in a snapshot's time, message and size.
func (e *Engine) describe(ctx context.Context, id schema.EnvID, s *Snapshot) {
	if b, err := os.ReadFile(e.notePath(id, s.Key)); err == nil {
		var n snapshotNote
		if json.Unmarshal(b, &n) == nil {
			s.CreatedAt, s.Message = n.CreatedAt, n.Message
		}
	}
	if s.CreatedAt == "" {
		if fi, err := os.Stat(e.st.layerPath(s.Key)); err == nil {
			s.CreatedAt = store.FormatTime(fi.ModTime())
		}
	}
	if n, err := e.st.objects.Size(ctx, s.TarHash); err == nil {
		s.Size = n
	}
}

// ResolveSnapshot returns the key of the environment's snapshot that ref names: a full
// key, or a unique prefix of one (as snapshots lists them).
func (e *Engine) ResolveSnapshot(ctx context.Context, id schema.EnvID, ref string) (schema.Digest, error) {
	ref = strings.ToLower(strings.TrimSpace(ref))
	if !schema.IsHexPrefix(ref) {
		return schema.Digest{}, withMsg(ErrInvalidRef, "invalid snapshot hash '%s': want its hex digits or a unique prefix of them", ref)
	}
	if d, err := schema.ParseDigest(ref); err == nil {
		return d, nil // a full key: Restore checks it
	}
	snaps, err := e.Snapshots(ctx, id)
	if err != nil {
		return schema.Digest{}, err
	}
	var found []schema.Digest
	for _, s := range snaps {
		if strings.HasPrefix(s.Key.String(), ref) {
			found = append(found, s.Key)
		}
	}
	switch len(found) {
	case 0:
		return schema.Digest{}, classify(ErrStore, fmt.Errorf("%w: no snapshot of %s starts with '%s'", store.ErrNotFound, id.Short(), ref))
	case 1:
		return found[0], nil
	}
	return schema.Digest{}, withMsg(ErrAmbiguous, "ambiguous snapshot prefix '%s': matches %d snapshots", ref, len(found))
}
