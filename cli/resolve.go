package cli

import (
	"errors"
	"fmt"
	"strings"
)

// errNoEnv and errAmbiguous classify id resolution failures (exit 1).
var (
	errNoEnv     = errors.New("no environment matching")
	errAmbiguous = errors.New("ambiguous env_id prefix")
)

// envRef is what id resolution needs to know about one environment.
type envRef struct {
	EnvID   string
	ShortID string
	Name    string
	State   string // lowercase
}

// label is the name when there is one, else the short id.
func (e envRef) label() string {
	if e.Name != "" {
		return e.Name
	}
	return e.ShortID
}

// resolveError is a failed resolution with the candidates a user may have meant.
type resolveError struct {
	class      error
	wrapped    error // the engine's error, kept in the chain
	input      string
	count      int
	candidates []envRef
}

func (e *resolveError) Unwrap() []error {
	if e.wrapped != nil {
		return []error{e.class, e.wrapped}
	}
	return []error{e.class}
}

func (e *resolveError) Error() string {
	var b strings.Builder
	line := func(r envRef) { fmt.Fprintf(&b, "\n  %s (%s) %s", r.label(), r.ShortID, r.State) }
	if e.class == errAmbiguous {
		fmt.Fprintf(&b, "ambiguous env_id prefix '%s': matches %d environments", e.input, e.count)
		if len(e.candidates) > 0 {
			b.WriteString("\n\nMatches:")
			for _, c := range e.candidates {
				line(c)
			}
			b.WriteString("\n\nUse a longer prefix, a full env_id, or a unique name.")
		}
		return b.String()
	}
	fmt.Fprintf(&b, "no environment matching '%s'", e.input)
	if len(e.candidates) > 0 {
		b.WriteString("\n\nDid you mean:")
		for _, c := range e.candidates {
			line(c)
		}
		b.WriteString("\n\nUse 'karapace list' to see all environments.")
	}
	return b.String()
}

// suggestions lists up to five environments whose name or short id contains input,
// case-insensitively.
func suggestions(envs []envRef, input string) []envRef {
	if input == "" {
		return nil
	}
	var sugg []envRef
	lower := strings.ToLower(input)
	for _, e := range envs {
		if len(sugg) == 5 {
			break
		}
		if (e.Name != "" && strings.Contains(strings.ToLower(e.Name), lower)) || strings.Contains(e.ShortID, lower) {
			sugg = append(sugg, e)
		}
	}
	return sugg
}
