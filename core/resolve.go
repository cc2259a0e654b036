package core

import (
	"fmt"

	"github.com/karapace/karapace/schema"
)

// validName reports whether s is a valid environment name: 1-64 of [A-Za-z0-9_-].
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// resolveRef picks the environment a reference names among envs (sorted by id). Exact
// matches win, in this order: full id, short id, name (the original's order); then a
// unique id prefix. Only lowercase hex is ever compared with ids, and names are never
// prefix-matched.
func resolveRef(ref string, envs []Env) (schema.EnvID, error) {
	hex, name := schema.IsHexPrefix(ref), validName(ref)
	if !hex && !name {
		return schema.EnvID{}, fmt.Errorf("%w: %q is neither an id prefix (lowercase hex) nor a name ([A-Za-z0-9_-], 1-64 characters)", ErrInvalidRef, clip(ref))
	}
	for i := range envs {
		if hex && (envs[i].EnvID.String() == ref || envs[i].ShortID == ref) {
			return envs[i].EnvID, nil
		}
	}
	if name {
		for i := range envs {
			if envs[i].Name != nil && *envs[i].Name == ref {
				return envs[i].EnvID, nil
			}
		}
	}
	var matches []Env
	if hex {
		for i := range envs {
			if len(ref) <= 64 && envs[i].EnvID.String()[:len(ref)] == ref {
				matches = append(matches, envs[i])
			}
		}
	}
	switch len(matches) {
	case 0:
		return schema.EnvID{}, fmt.Errorf("%w: no environment matching '%s'", ErrNotFound, ref)
	case 1:
		return matches[0].EnvID, nil
	}
	return schema.EnvID{}, &AmbiguousError{Ref: ref, Candidates: matches}
}

// clip keeps error messages short when the bad input is huge.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
