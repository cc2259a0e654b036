package store

import (
	"fmt"
	"sort"
	"strings"

	"github.com/karapace/karapace/schema"
)

// DanglingRef is a reference whose target the store does not hold: a field of
// environment Env's metadata (Layer zero) or of layer Layer. Env is, for a layer, the
// environment the layer belongs to (one that refers to it, or whose base layer a
// snapshot's parent is; the first by id), zero when none does.
type DanglingRef struct {
	Env   schema.EnvID
	Layer schema.Digest
	Kind  LayerKind // of Layer
	Ref
}

// Dangling checks every reference of the graph, from every environment and every
// readable layer, live or not, against the layers and objects the graph holds, and
// returns how many it checked and those whose target is missing: environments in id
// order, then layers in content-hash order, each in the order of its Refs. Like Mark
// it does no I/O.
func Dangling(g Graph) (int, []DanglingRef) {
	objects := make(map[schema.Digest]bool, len(g.Objects))
	for _, o := range g.Objects {
		objects[o] = true
	}
	present := func(r Ref) bool {
		if r.Object {
			return objects[r.To]
		}
		_, ok := g.Layers[r.To]
		return ok
	}
	envs := append([]GraphEnv(nil), g.Envs...)
	sort.Slice(envs, func(i, j int) bool { return less(envs[i].ID, envs[j].ID) })
	owner := map[schema.Digest]schema.EnvID{} // layer -> first environment naming it
	checked := 0
	var out []DanglingRef
	for _, e := range envs {
		for _, r := range e.Refs() {
			checked++
			if !r.Object {
				if _, ok := owner[r.To]; !ok {
					owner[r.To] = e.ID
				}
			}
			if !present(r) {
				out = append(out, DanglingRef{Env: e.ID, Ref: r})
			}
		}
	}
	keys := make([]schema.Digest, 0, len(g.Layers))
	for k := range g.Layers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	for _, k := range keys {
		l := g.Layers[k]
		env, ok := owner[k]
		if !ok && l.Kind == KindSnapshot {
			env = owner[l.Parent]
		}
		for _, r := range l.Refs() {
			checked++
			if !present(r) {
				out = append(out, DanglingRef{Env: env, Layer: k, Kind: l.Kind, Ref: r})
			}
		}
	}
	return checked, out
}

// String names the reference and its missing target, e.g. "environment 1a2b3c4d5e6f:
// base layer <hex> is missing", "base layer <hex> of environment 1a2b3c4d5e6f: object
// <hex> is missing" or "snapshot <hex> of environment 1a2b3c4d5e6f: object <hex> is
// missing".
func (d DanglingRef) String() string {
	var holder string
	switch {
	case d.Layer.IsZero():
		holder = "environment " + d.Env.Short()
	case d.Kind == KindSnapshot && !d.Env.IsZero():
		holder = fmt.Sprintf("snapshot %s of environment %s", d.Layer, d.Env.Short())
	case d.Kind == KindSnapshot:
		holder = "snapshot " + d.Layer.String()
	case !d.Env.IsZero():
		holder = fmt.Sprintf("%s layer %s of environment %s", strings.ToLower(string(d.Kind)), d.Layer, d.Env.Short())
	default:
		holder = "layer " + d.Layer.String()
	}
	what := map[string]string{
		"manifest_hash": "manifest object", "base_layer": "base layer",
		"dependency_layers": "dependency layer", "policy_layer": "policy layer",
		"parent": "parent layer", "object_refs": "object",
	}[d.Field]
	return fmt.Sprintf("%s: %s %s is missing", holder, what, d.To)
}
