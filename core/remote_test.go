package core

import (
	"context"
	"errors"
	"testing"

	"github.com/karapace/karapace/remote"
)

func TestPushPull(t *testing.T) {
	ctx := context.Background()
	rb := remote.NewMemory()
	src := newEngine(t)
	id := build(t, src, manifest(t, "git"))
	if err := src.Rename(ctx, id, "shared"); err != nil {
		t.Fatal(err)
	}
	pr, err := src.Push(ctx, id, rb, PushOptions{Tag: "shared@v1"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.ObjectsPushed == 0 || pr.LayersPushed == 0 || pr.Tag != "shared@v1" {
		t.Errorf("push result %+v", pr)
	}
	again, err := src.Push(ctx, id, rb, PushOptions{})
	if err != nil || again.ObjectsPushed != 0 || again.ObjectsSkipped == 0 {
		t.Errorf("second push %+v %v", again, err)
	}
	dst := newEngine(t)
	for _, ref := range []string{"shared@v1", id.String()} {
		r, err := dst.Pull(ctx, ref, rb)
		if err != nil {
			t.Fatalf("pull %s: %v", ref, err)
		}
		if r.EnvID != id {
			t.Errorf("pulled %s, want %s", r.EnvID, id)
		}
	}
	got := inspect(t, dst, id)
	if got.DisplayName() != "shared" || got.BaseLayer != inspect(t, src, id).BaseLayer {
		t.Errorf("pulled metadata %+v", got)
	}
	checkClean(t, dst)
	if _, err := dst.Pull(ctx, "nosuch@v1", rb); !errors.Is(err, ErrRemote) || !errors.Is(err, remote.ErrNotFound) {
		t.Errorf("pull of a missing ref: %v", err)
	}
	if _, err := src.Push(ctx, id, rb, PushOptions{Tag: "bad tag"}); !errors.Is(err, ErrRemote) {
		t.Errorf("bad tag: %v", err)
	}
}
