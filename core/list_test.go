package core

import (
	"context"
	"errors"
	"os"
	"reflect"
	"testing"
)

// Each walks what List returns, in the same order, skips a corrupt record as List
// does, and hands back an error of fn as it is.
func TestEachIsListWithoutTheSlice(t *testing.T) {
	ctx := context.Background()
	e := newEngine(t)
	a := build(t, e, manifest(t, "git"))
	b := build(t, e, manifest(t, "git", "clang"))
	if err := e.Rename(ctx, a, "alpha"); err != nil {
		t.Fatal(err)
	}
	c := build(t, e, manifest(t, "clang"))
	if err := os.WriteFile(e.st.metaPath(c), []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	list, err := e.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %d envs, %v", len(list), err)
	}
	var each []Env
	if err := e.Each(ctx, func(env *Env) error { each = append(each, *env); return nil }); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(each, list) {
		t.Fatalf("Each gave %+v\nList gave %+v", each, list)
	}
	for _, env := range each {
		want, err := e.Inspect(ctx, env.EnvID)
		if err != nil || !reflect.DeepEqual(env, *want) {
			t.Errorf("Each gave %+v, Inspect %+v, %v", env, want, err)
		}
	}
	if each[0].EnvID.String() > each[1].EnvID.String() || (each[0].EnvID != a && each[0].EnvID != b) {
		t.Fatalf("order or content: %+v", each)
	}
	stop := errors.New("stop")
	n := 0
	if err := e.Each(ctx, func(*Env) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("Each = %v after %d calls; want the callback's error after 1", err, n)
	}
	if _, err := e.Inspect(ctx, c); !errors.Is(err, ErrStore) {
		t.Fatalf("Inspect of the corrupt record = %v", err)
	}
}
