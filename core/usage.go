package core

import (
	"context"
	"io/fs"
	"path/filepath"

	"github.com/karapace/karapace/schema"
)

// Usage is the disk an environment takes: its base layer's tar in the store (shared
// with environments of the same build) and its writable layer now.
type Usage struct {
	BaseLayer int64 `json:"base_layer_bytes"`
	Writable  int64 `json:"writable_bytes"`
}

// Usage measures an environment's base layer and writable layer (the sizes of its
// regular files; what cannot be read is left out, as du would warn and go on).
func (e *Engine) Usage(ctx context.Context, id schema.EnvID) (Usage, error) {
	m, err := e.get(ctx, id)
	if err != nil {
		return Usage{}, err
	}
	var u Usage
	if base, err := schema.ParseDigest(m.BaseLayer); err == nil {
		if l, err := e.st.layerGet(ctx, base); err == nil {
			if n, err := e.st.objects.Size(ctx, l.TarHash); err == nil {
				u.BaseLayer = n
			}
		}
	}
	_ = filepath.WalkDir(e.layout.UpperDir(id), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || ctx.Err() != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				u.Writable += fi.Size()
			}
		}
		return nil
	})
	return u, ctx.Err()
}
