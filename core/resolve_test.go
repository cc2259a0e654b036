package core

import (
	"errors"
	"strings"
	"testing"

	"github.com/karapace/karapace/schema"
)

func TestResolveRef(t *testing.T) {
	mk := func(hexID, name string) Env {
		e := Env{EnvID: schema.MustParseDigest(hexID), ShortID: hexID[:12]}
		if name != "" {
			e.Name = &name
		}
		return e
	}
	a := mk("aaaa1111"+strings.Repeat("0", 56), "dev")
	b := mk("aaaa2222"+strings.Repeat("0", 56), "")
	c := mk("bbbb0000"+strings.Repeat("0", 56), "aaaa")     // a name that is also a hex prefix
	d := mk("cccc0000"+strings.Repeat("1", 56), "cccc0000") // a name equal to its own prefix
	envs := []Env{a, b, c, d}
	for _, tc := range []struct {
		ref  string
		want schema.EnvID
		err  error
	}{
		{a.EnvID.String(), a.EnvID, nil},
		{b.ShortID, b.EnvID, nil},
		{"dev", a.EnvID, nil},
		{"aaaa1", a.EnvID, nil},
		{"aaaa", c.EnvID, nil}, // exact name beats an ambiguous prefix
		{"aaa", schema.EnvID{}, ErrAmbiguous},
		{"cccc0000", d.EnvID, nil},
		{"dddd", schema.EnvID{}, ErrNotFound},
		{"nosuch", schema.EnvID{}, ErrNotFound},
		{"Dev", schema.EnvID{}, ErrNotFound},
		{"../x", schema.EnvID{}, ErrInvalidRef},
		{"/etc", schema.EnvID{}, ErrInvalidRef},
		{"", schema.EnvID{}, ErrInvalidRef},
		{"a b", schema.EnvID{}, ErrInvalidRef},
		{strings.Repeat("a", 65), schema.EnvID{}, ErrInvalidRef},
		{strings.Repeat("f", 64), schema.EnvID{}, ErrNotFound},
	} {
		got, err := resolveRef(tc.ref, envs)
		if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) || got != tc.want {
			t.Errorf("resolveRef(%q) = %v, %v; want %v, %v", tc.ref, got, err, tc.want, tc.err)
		}
	}
	_, err := resolveRef("aaa", envs)
	var amb *AmbiguousError
	if !errors.As(err, &amb) || len(amb.Candidates) != 2 || err.Error() != "ambiguous env_id prefix 'aaa': matches 2 environments" {
		t.Errorf("ambiguous error %v", err)
	}
}
