package namespace

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime"
)

// TestRunUnshare (a Test(Run...) name, so TestRootless runs it again as the test user):
// as root the command runs as it is; as a user with a range it runs as root of a user
// namespace with the user's full map, where files of subordinate ids are its own, and
// RemoveTree removes a tree the user alone cannot.
func TestRunUnshare(t *testing.T) {
	ctx := context.Background()
	var out bytes.Buffer
	env := []string{"PATH=/usr/bin:/bin"}
	code, err := Unshare(ctx, []string{"sh", "-c", "id -u; exit 3"}, runtime.Stdio{Stdout: &out, Stderr: &out}, env, Options{})
	if err != nil || code != 3 || out.String() != "0\n" {
		t.Fatalf("unshare: code %d err %v out %q", code, err, out.String())
	}
	if code, err := Unshare(ctx, []string{"no-such-command"}, runtime.Stdio{}, env, Options{}); code != 127 || err == nil {
		t.Errorf("missing command: code %d err %v", code, err)
	}
	if os.Geteuid() == 0 {
		return
	}
	ids, err := callerIDMaps()
	if err != nil || !ids.Full {
		t.Skipf("no subordinate range for this user (%v %s)", err, ids.Reason)
	}
	out.Reset()
	if code, err := Unshare(ctx, []string{"cat", "/proc/self/uid_map"}, runtime.Stdio{Stdout: &out}, env, Options{}); code != 0 || err != nil ||
		len(strings.Fields(out.String())) != 6 {
		t.Fatalf("uid_map inside: code %d err %v %q", code, err, out.String())
	}
	tree := filepath.Join(t.TempDir(), "tree")
	script := "mkdir -p " + tree + "/sub && touch " + tree + "/sub/f && chown -R 1:1 " + tree + "/sub"
	if code, err := Unshare(ctx, []string{"sh", "-c", script}, runtime.Stdio{Stderr: &out}, env, Options{}); code != 0 || err != nil {
		t.Fatalf("make a tree of a subordinate id: code %d err %v %s", code, err, out.String())
	}
	if err := os.RemoveAll(tree); err == nil {
		t.Fatal("the user removed a tree of a subordinate id alone: the test proves nothing")
	}
	if err := RemoveTree(ctx, tree); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(tree); !os.IsNotExist(err) {
		t.Errorf("tree still there: %v", err)
	}
}
