package cli

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// These tests run the built binary on the mock backend, as a user would. Ports of the
// original's cli_integration.rs carry its test names in comments.

// cli_version_exits_zero, cli_help_exits_zero.
func TestCLIVersionAndHelp(t *testing.T) {
	w := newWorld(t)
	if r := w.ok("--version"); !strings.Contains(r.stdout, "karapace") {
		t.Errorf("version: %s", r)
	}
	r := w.ok("--help")
	for _, c := range allCommands {
		if !strings.Contains(r.stdout, "\n  "+c+" ") {
			t.Errorf("help does not list %s:\n%s", c, r.stdout)
		}
	}
	w.golden("help.txt", r.stdout)
}

// allCommands are the original's 26 subcommands.
var allCommands = []string{
	"new", "build", "rebuild", "pin", "enter", "exec", "destroy", "stop", "freeze", "archive",
	"list", "inspect", "diff", "snapshots", "commit", "restore", "gc", "verify-store", "push",
	"pull", "rename", "completions", "man-pages", "tui", "doctor", "migrate",
}

func TestCLIUsageErrors(t *testing.T) {
	w := newWorld(t)
	w.fail(2, []string{"unknown command \"bogus\""}, "bogus")
	w.fail(2, []string{"unknown flag: --bogus"}, "list", "--bogus")
	w.fail(2, []string{"accepts 1 arg(s)"}, "inspect")
	w.fail(2, []string{"needs a command after --"}, "exec", "x")
	w.fail(2, []string{"needs a command after --"}, "exec", "x", "--")
	w.fail(2, []string{"invalid argument"}, "--lock-timeout", "soon", "list")
	w.fail(2, []string{"--lock-timeout must not be negative"}, "--lock-timeout", "-1s", "list")
	// No HOME and no store given: an error, not a directory named "~".
	w.env = []string{"PATH=" + os.Getenv("PATH")}
	w.fail(1, []string{"no store: HOME is not set"}, "list")
	if _, err := os.Stat(filepath.Join(w.dir, "~")); !os.IsNotExist(err) {
		t.Errorf("a directory named ~ appeared: %v", err)
	}
}

// cli_build_succeeds_with_mock, plus the text and JSON shapes of build.
func TestCLIBuild(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling", "git", "curl")
	r := w.ok("build")
	w.golden("build.txt", r.stdout)
	if !strings.Contains(r.stderr, "environment built") {
		t.Errorf("no progress on stderr: %s", r)
	}
	if _, err := os.Stat(filepath.Join(w.dir, "karapace.lock")); err != nil {
		t.Errorf("build wrote no lock file: %v", err)
	}
	// Global flags after the command name, and --store instead of KARAPACE_STORE.
	r = w.ok("build", "--name", "demo", "--json", "--store", w.store)
	w.golden("build.json", r.stdout)
	var res buildResult
	decodeOne(t, r.stdout, &res)
	if res.Name == nil || *res.Name != "demo" || res.Status != "built" || res.ShortID != res.EnvID[:12] {
		t.Errorf("build --json: %+v", res)
	}
	// --locked builds exactly the lock.
	w.ok("build", "--locked")
	// rebuild keeps the name.
	r = w.ok("--json", "rebuild")
	w.golden("rebuild.json", r.stdout)
	r = w.ok("rebuild")
	w.golden("rebuild.txt", r.stdout)
}

// cli_build_nonexistent_manifest_fails, malformed manifests.
func TestCLIBadManifests(t *testing.T) {
	w := newWorld(t)
	w.fail(2, []string{"error: "}, "build", "missing.toml")
	w.write("syntax.toml", "manifest_version = 1\n[base\nimage = \"x\"\n")
	w.fail(2, []string{"error: ", "failed to parse manifest"}, "build", "syntax.toml")
	w.write("type.toml", "manifest_version = 1\n[base]\nimage = 7\n")
	w.fail(2, nil, "build", "type.toml")
	w.write("version.toml", "manifest_version = 2\n[base]\nimage = \"x\"\n")
	w.fail(2, []string{"manifest_version"}, "build", "version.toml")
	w.write("unknown.toml", "manifest_version = 1\n[base]\nimage = \"x\"\nsurprise = true\n")
	w.fail(2, nil, "build", "unknown.toml")
	w.write("empty.toml", "")
	w.fail(2, nil, "build", "empty.toml")
	w.write("binary.toml", "\x00\x01\x02")
	w.fail(2, nil, "build", "binary.toml")
	w.fail(2, nil, "rebuild", "missing.toml")
	w.write("backend.toml", "manifest_version = 1\n[base]\nimage = \"x\"\n[runtime]\nbackend = \"nope\"\n")
	w.fail(1, []string{"backend 'nope' is not available on this system"}, "build", "backend.toml")
	w.fail(2, nil, "pin", "--check", "missing.toml")
	w.manifest("karapace.toml", "rolling")
	w.fail(2, []string{"base.image is not pinned"}, "build", "--require-pinned-image")
	// Nothing was built by any of these.
	var envs []core.Env
	w.jsonOK(&envs, "list")
	if len(envs) != 0 {
		t.Errorf("failed builds left environments: %+v", envs)
	}
}

// cli_build_offline_fails_fast_with_packages.
func TestCLIBuildOffline(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling", "git")
	r := w.run("build", "--offline")
	if r.code == 0 || !strings.Contains(r.stderr, "offline mode") || !strings.Contains(r.stderr, "system packages") {
		t.Errorf("offline build with packages: %s", r)
	}
	w.manifest("karapace.toml", "rolling")
	w.ok("build", "--offline")
}

func TestCLIWrongStoreVersion(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.ok("build", "--name", "demo")
	if err := os.WriteFile(filepath.Join(w.store, "store", "version"), []byte("{\"format_version\": 99}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.fail(3, []string{"store format version mismatch: expected 2, found 99"}, "build")
	for _, args := range [][]string{{"rebuild"}, {"destroy", "demo"}, {"list"}, {"inspect", "demo"}, {"gc"}, {"verify-store"}, {"exec", "demo", "--", "true"}, {"freeze", "demo"}, {"commit", "demo"}, {"diff", "demo"}} {
		w.fail(3, []string{"store format version mismatch: expected 2, found 99", "karapace migrate"}, args...)
	}
	if _, err := os.Stat(filepath.Join(w.store, "env")); err != nil {
		t.Errorf("the environment directory went away: %v", err)
	}
	r := w.run("--json", "migrate")
	if r.code != 1 {
		t.Fatalf("migrate on a newer store: %s", r)
	}
	w.golden("migrate-newer.json", r.stdout)
	w.golden("migrate-newer.txt", w.run("migrate").stdout)
}

// cli_pin_check_fails_when_unpinned, cli_pin_check_succeeds_when_pinned_url, and pin
// of an URL (no network needed) with --write-lock.
func TestCLIPin(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.fail(1, []string{"base.image is not pinned: 'rolling' (run 'karapace pin')"}, "pin", "--check")
	const url = "https://example.invalid/rootfs.tar.xz"
	w.write("pinned.toml", "# pinned\nmanifest_version = 1\n\n[base]\nimage = \"https://example.invalid/rootfs.tar.xz\" # exact build\n\n[runtime]\nbackend = \"mock\"\n")
	r := w.ok("pin", "--check", "pinned.toml")
	w.golden("pin-check.txt", r.stdout)
	r = w.ok("--json", "pin", "--check", "pinned.toml")
	w.golden("pin-check.json", r.stdout)
	r = w.ok("--json", "pin", "pinned.toml", "--write-lock")
	w.golden("pin.json", r.stdout)
	if b, err := os.ReadFile(filepath.Join(w.dir, "pinned.toml")); err != nil || !strings.HasPrefix(string(b), "# pinned\n") {
		t.Errorf("pin lost the manifest's comments: %q %v", b, err)
	}
	w.golden("pin.txt", w.ok("pin", "pinned.toml").stdout)
	if _, err := os.Stat(filepath.Join(w.dir, "karapace.lock")); err != nil {
		t.Errorf("pin --write-lock wrote no lock: %v", err)
	}
	var envs []core.Env
	w.jsonOK(&envs, "list")
	if len(envs) != 1 {
		t.Errorf("pin --write-lock built %d environments", len(envs))
	}
}

// cli_list_json_output_stable, cli_inspect_json_output_stable, and the text forms.
func TestCLIListInspect(t *testing.T) {
	w := newWorld(t)
	w.golden("list-empty.txt", w.ok("list").stdout)
	w.golden("list-empty.json", w.ok("--json", "list").stdout)
	w.manifest("karapace.toml", "rolling", "git")
	id := w.buildNamed("karapace.toml", "demo")
	// Another project (a directory holds one project: one karapace.lock).
	w.manifest("other/karapace.toml", "debian/bookworm")
	w.buildNamed("other/karapace.toml", "")

	r := w.ok("--json", "list")
	var envs []map[string]any
	decodeOne(t, r.stdout, &envs)
	if len(envs) != 2 {
		t.Fatalf("list: %s", r)
	}
	for _, e := range envs {
		if _, ok := e["env_id"].(string); !ok {
			t.Errorf("env_id is not a string: %v", e)
		}
		if _, ok := e["state"].(string); !ok {
			t.Errorf("state is not a string: %v", e)
		}
	}
	w.golden("list.json", r.stdout)
	w.golden("list.txt", w.ok("list").stdout)

	r = w.ok("--json", "inspect", "demo")
	var env map[string]any
	decodeOne(t, r.stdout, &env)
	if env["env_id"] != id || env["state"] != "Built" {
		t.Errorf("inspect: %v", env)
	}
	w.golden("inspect.json", r.stdout)
	w.golden("inspect.txt", w.ok("inspect", id[:12]).stdout)
	// By full id, short id, unique prefix and name.
	for _, ref := range []string{id, id[:12], id[:6], "demo"} {
		var e core.Env
		w.jsonOK(&e, "inspect", ref)
		if e.EnvID.String() != id {
			t.Errorf("inspect %s gave %s", ref, e.EnvID)
		}
	}
}

func TestCLIHostileAndUnknownRefs(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")
	// A file outside the store that a path built from the reference would hit.
	victim := filepath.Join(filepath.Dir(w.store), "victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{"../x", "/etc", "..", ".", "../victim", "../../victim", "demo/..", strings.Repeat("a", 64), "-"} {
		for _, cmd := range [][]string{{"inspect"}, {"destroy"}, {"freeze"}, {"diff"}, {"snapshots"}, {"commit"}, {"rename"}, {"exec"}} {
			args := append(append([]string{}, cmd...), ref)
			switch cmd[0] {
			case "rename":
				args = append(args, "newname")
			case "exec":
				args = append(args, "--", "true")
			}
			if ref == "-" {
				if cmd[0] == "exec" {
					// `exec -- - -- true` now names no environment (the project's) and
					// runs "-": no reference to refuse.
					continue
				}
				args = append(args[:1], append([]string{"--"}, args[1:]...)...)
			}
			r := w.run(args...)
			if r.code != 1 && r.code != 2 {
				t.Errorf("karapace %q: %s", args, r)
			}
		}
	}
	if _, err := os.Stat(victim); err != nil {
		t.Errorf("hostile references touched %s: %v", victim, err)
	}
	if _, err := os.Stat("/etc/passwd"); err != nil {
		t.Errorf("/etc/passwd: %v", err)
	}
	r := w.fail(1, []string{"no environment matching 'nothing'"}, "inspect", "nothing")
	if strings.Contains(r.stderr, "Did you mean") {
		t.Errorf("suggestions for an unrelated name: %s", r)
	}
	w.fail(1, []string{"no environment matching 'dem'", "Did you mean:", "demo (", "karapace list"}, "inspect", "dem")
	// The --json path keeps the message plain.
	r = w.fail(1, []string{"no environment matching 'dem'"}, "--json", "inspect", "dem")
	if strings.Contains(r.stderr, "Did you mean") || r.stdout != "" {
		t.Errorf("--json inspect of an unknown env: %s", r)
	}
	var envs []core.Env
	w.jsonOK(&envs, "list")
	if len(envs) != 1 || envs[0].State != core.Built {
		t.Errorf("the environment changed: %+v", envs)
	}
}

func TestCLIAmbiguousPrefix(t *testing.T) {
	w := newWorld(t)
	// Mock ids are deterministic: among 17 images two ids share a first hex digit.
	byFirst := map[byte][]string{}
	var prefix string
	for i := 0; i < 17 && prefix == ""; i++ {
		name := filepath.Join("m", string(rune('a'+i))+".toml")
		w.manifest(name, "image-"+string(rune('a'+i)))
		id := w.buildNamed(name, "")
		byFirst[id[0]] = append(byFirst[id[0]], id)
		if len(byFirst[id[0]]) == 2 {
			prefix = id[:1]
		}
	}
	if prefix == "" {
		t.Fatal("no two ids share a first digit among 17")
	}
	w.fail(1, []string{"ambiguous env_id prefix '" + prefix + "': matches 2 environments", "Matches:", "Use a longer prefix"}, "inspect", prefix)
	w.fail(1, []string{"ambiguous env_id prefix"}, "destroy", prefix)
	ids := byFirst[prefix[0]]
	var e core.Env
	w.jsonOK(&e, "inspect", ids[1][:12])
	if e.EnvID.String() != ids[1] {
		t.Errorf("inspect by short id gave %s", e.EnvID)
	}
}

// cli_snapshots_restore_hash_matches_commit, plus diff.
func TestCLISnapshotsDiffRestore(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling", "git")
	id := w.buildNamed("karapace.toml", "demo")
	w.golden("snapshots-none.txt", w.ok("snapshots", "demo").stdout)
	w.golden("diff.txt", w.ok("diff", "demo").stdout)
	w.golden("diff.json", w.ok("--json", "diff", "demo").stdout)

	var commit commitResult
	r := w.jsonOK(&commit, "commit", "demo")
	w.golden("commit.json", r.stdout)
	if commit.EnvID != id || len(commit.SnapshotHash) != 64 {
		t.Fatalf("commit: %+v", commit)
	}
	var snaps snapshotsResult
	r = w.jsonOK(&snaps, "snapshots", "demo")
	w.golden("snapshots.json", r.stdout)
	if len(snaps.Snapshots) != 1 || snaps.Snapshots[0].Key.String() != commit.SnapshotHash {
		t.Fatalf("snapshots: %s", r)
	}
	w.golden("snapshots.txt", w.ok("snapshots", "demo").stdout)
	w.golden("commit.txt", w.ok("commit", "demo").stdout)

	// Drift after a change in the writable layer, then restore undoes it.
	upper := filepath.Join(w.store, "env", id, "upper")
	if err := os.WriteFile(filepath.Join(upper, "new-file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := w.ok("diff", "demo"); !strings.Contains(r.stdout, "  + new-file") {
		t.Errorf("diff after a change: %s", r)
	}
	var rest restoreResult
	r = w.jsonOK(&rest, "restore", "demo", commit.SnapshotHash)
	w.golden("restore.json", r.stdout)
	if _, err := os.Stat(filepath.Join(upper, "new-file")); !os.IsNotExist(err) {
		t.Errorf("restore kept new-file: %v", err)
	}
	w.golden("restore.txt", w.ok("restore", "demo", commit.SnapshotHash).stdout)
	w.fail(1, []string{"invalid snapshot hash"}, "restore", "demo", "../../etc/passwd")
	w.fail(3, nil, "restore", "demo", strings.Repeat("0", 64))
}

func TestCLILifecycle(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")

	r := w.ok("exec", "demo", "--", "echo", "hello", "world")
	if r.stdout != "mock-exec: echo hello world\n" {
		t.Errorf("exec: %s", r)
	}
	// The command's own exit status passes through.
	if r := w.run("exec", "demo", "--", "mock:exit", "7"); r.code != 7 {
		t.Errorf("exec exit 7: %s", r)
	}
	if r := w.run("enter", "demo", "--", "mock:exit", "5"); r.code != 5 {
		t.Errorf("enter exit 5: %s", r)
	}
	w.ok("enter", "demo")
	// stdin is streamed.
	if r := w.runStdin("from stdin\n", "exec", "demo", "--", "mock:cat"); r.code != 0 || r.stdout != "from stdin\n" {
		t.Errorf("exec stdin: %s", r)
	}
	if r := w.ok("exec", "demo", "--", "mock:stderr", "to", "stderr"); r.stderr != "to stderr\n" {
		t.Errorf("exec stderr: %s", r)
	}

	w.golden("freeze.txt", w.ok("freeze", "demo").stdout)
	w.fail(1, []string{"invalid state transition"}, "exec", "demo", "--", "true")
	w.fail(1, []string{"invalid state transition"}, "freeze", "demo")
	w.golden("archive.txt", w.ok("archive", "demo").stdout)
	w.fail(1, []string{"invalid state transition"}, "commit", "demo")
	var e core.Env
	w.jsonOK(&e, "inspect", "demo")
	if e.State != core.Archived {
		t.Errorf("state %v", e.State)
	}
	// A rebuild makes it Built again.
	w.ok("rebuild")
	w.jsonOK(&e, "inspect", "demo")
	if e.State != core.Built {
		t.Errorf("state after rebuild %v", e.State)
	}
	w.fail(1, []string{"not running"}, "stop", "demo")

	var lr lifecycleResult
	r = w.jsonOK(&lr, "freeze", "demo")
	w.golden("freeze.json", r.stdout)

	w.golden("rename.txt", w.ok("rename", "demo", "renamed").stdout)
	r = w.jsonOK(&renameResult{}, "rename", "renamed", "demo")
	w.golden("rename.json", r.stdout)
	w.fail(3, []string{"invalid environment name"}, "rename", "demo", "bad name!")
	w.fail(3, []string{"invalid environment name"}, "rename", "demo", strings.Repeat("n", 65))
	w.manifest("other.toml", "other")
	w.buildNamed("other.toml", "other")
	w.fail(3, []string{"name 'demo' is already used"}, "rename", "other", "demo")

	// cli_destroy_succeeds.
	w.golden("destroy.txt", w.ok("destroy", "demo").stdout)
	w.fail(1, []string{"no environment matching 'demo'"}, "inspect", "demo")
	r = w.jsonOK(&lr, "destroy", "other")
	w.golden("destroy.json", r.stdout)
	w.golden("list-after-destroy.txt", w.ok("list").stdout)
}

func TestCLIStopRunningSession(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")
	c := w.cmd("exec", "demo", "--", "mock:sleep", "30")
	var out, errb strings.Builder
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	waitFor(t, 10*time.Second, "the environment to run", func() bool {
		var e core.Env
		r := w.run("--json", "inspect", "demo")
		return r.code == 0 && json.Unmarshal([]byte(r.stdout), &e) == nil && e.State == core.Running
	})
	w.fail(1, []string{"invalid state transition"}, "destroy", "demo")
	r := w.ok("stop", "demo")
	w.golden("stop.txt", r.stdout)
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 143 {
		t.Errorf("stopped exec: %v, stderr %q", err, errb.String())
	}
	var e core.Env
	w.jsonOK(&e, "inspect", "demo")
	if e.State != core.Built {
		t.Errorf("state after stop: %v", e.State)
	}
}

// cli_gc_empty_store_succeeds, cli_verify_store_clean.
func TestCLIGCVerify(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")
	var gc core.GCReport
	r := w.jsonOK(&gc, "gc", "--dry-run")
	if !gc.DryRun {
		t.Errorf("gc: %s", r)
	}
	w.golden("gc-dry-run.json", r.stdout)
	w.golden("gc-dry-run.txt", w.ok("gc", "--dry-run").stdout)
	w.golden("gc.txt", w.ok("gc").stdout)
	var v verifyResult
	r = w.jsonOK(&v, "verify-store")
	if v.Failed != 0 || v.Checked == 0 {
		t.Errorf("verify-store: %s", r)
	}
	w.golden("verify-store.json", r.stdout)
	w.golden("verify-store.txt", w.ok("verify-store").stdout)

	// Corrupt one object: verify-store exits 3 and names it.
	objects, _ := filepath.Glob(filepath.Join(w.store, "store", "objects", "*"))
	if len(objects) == 0 {
		t.Fatal("no objects in the store")
	}
	if err := os.WriteFile(objects[0], []byte("corrupted"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = w.run("verify-store")
	if r.code != 3 || !strings.Contains(r.stdout, "  FAIL "+filepath.Base(objects[0])) {
		t.Errorf("verify-store of a corrupt store: %s", r)
	}
	r = w.run("--json", "verify-store")
	decodeOne(t, r.stdout, &v)
	if r.code != 3 || v.Failed != 1 || len(v.Failures) != 1 {
		t.Errorf("verify-store --json of a corrupt store: %s", r)
	}
}

// TestCLIVerifyLargeObject: verify-store of the built binary on an object large enough
// to be mapped and hashed on every core (a commit of 9 MiB of random bytes): it passes
// clean, and a flipped byte, then a truncation to just above treehash.MinSize, each exit
// 3 naming the object. (A file truncated while it is mapped is treehash's
// TestSumMappedFault.)
func TestCLIVerifyLargeObject(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	id := w.buildNamed("karapace.toml", "demo")
	content := make([]byte, 9<<20)
	_, _ = rand.NewChaCha8([32]byte{'v'}).Read(content)
	if err := os.WriteFile(filepath.Join(w.store, "env", id, "upper", "blob"), content, 0o644); err != nil {
		t.Fatal(err)
	}
	w.ok("commit", "demo")
	var large string
	objects, _ := filepath.Glob(filepath.Join(w.store, "store", "objects", "*"))
	for _, o := range objects {
		if fi, err := os.Stat(o); err == nil && fi.Size() > int64(len(content)) {
			large = o
		}
	}
	if large == "" {
		t.Fatalf("no object above %d bytes among %d", len(content), len(objects))
	}
	var v verifyResult
	if r := w.jsonOK(&v, "verify-store"); v.Failed != 0 {
		t.Fatalf("verify-store of a clean store: %s", r)
	}
	fi, err := os.Stat(large)
	if err != nil {
		t.Fatal(err)
	}
	damage := []struct {
		name string
		do   func(*os.File) error
	}{
		{"flipped byte", func(f *os.File) error {
			b := make([]byte, 1)
			if _, err := f.ReadAt(b, fi.Size()/2); err != nil {
				return err
			}
			b[0] ^= 0x40
			_, err := f.WriteAt(b, fi.Size()/2)
			return err
		}},
		{"truncated", func(f *os.File) error { return f.Truncate(fi.Size() - 5<<20) }},
	}
	for _, d := range damage {
		f, err := os.OpenFile(large, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = d.do(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		r := w.run("verify-store")
		if r.code != 3 || !strings.Contains(r.stdout, "  FAIL "+filepath.Base(large)) || !strings.Contains(r.stdout, "hash mismatch") {
			t.Errorf("verify-store after a %s: %s", d.name, r)
		}
	}
}

func TestCLIMigrate(t *testing.T) {
	w := newWorld(t)
	// A fresh machine: no store at all (the original's B1 failed here).
	r := w.ok("--json", "migrate")
	w.golden("migrate-no-store.json", r.stdout)
	w.golden("migrate-no-store.txt", w.ok("migrate").stdout)
	if _, err := os.Stat(w.store); !os.IsNotExist(err) {
		t.Errorf("migrate created the store: %v", err)
	}
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "")
	w.golden("migrate-current.json", w.ok("--json", "migrate").stdout)
	w.golden("migrate-current.txt", w.ok("migrate").stdout)
}

func TestCLIDoctor(t *testing.T) {
	w := newWorld(t)
	var d doctorResult
	r := w.run("--json", "doctor")
	decodeOne(t, r.stdout, &d)
	names := []string{}
	for _, c := range d.Checks {
		names = append(names, c.Name)
	}
	const runtimeChecks = "user_namespaces,overlay_kernel,overlay_fuse,id_mapping,cgroups,oci_runtime,store_writable,disk_space,terminal_injection"
	if strings.Join(names, ",") != runtimeChecks+",store_exists" || d.Checks[len(d.Checks)-1].Status != "info" {
		t.Errorf("doctor on a fresh machine: %s", r)
	}
	if (r.code == 0) != d.Healthy {
		t.Errorf("doctor exit %d with healthy=%v", r.code, d.Healthy)
	}
	if _, err := os.Stat(w.store); !os.IsNotExist(err) {
		t.Errorf("doctor created the store: %v", err)
	}
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "")
	r = w.run("--json", "doctor")
	decodeOne(t, r.stdout, &d)
	names = names[:0]
	for _, c := range d.Checks {
		names = append(names, c.Name)
		if strings.HasPrefix(c.Name, "store_") && c.Status == "fail" {
			t.Errorf("doctor store check failed: %+v", c)
		}
	}
	if strings.Join(names, ",") != runtimeChecks+",store_exists,store_version,store_integrity,wal_clean,store_lock,environments" {
		t.Errorf("doctor checks: %v", names)
	}
	if (r.code == 0) != d.Healthy {
		t.Errorf("doctor exit %d with healthy=%v", r.code, d.Healthy)
	}
	r = w.run("doctor")
	if !strings.HasPrefix(r.stdout, "Karapace Doctor\n\n") || !strings.Contains(r.stdout, "✓ store_version: Store format version valid") {
		t.Errorf("doctor text: %s", r)
	}
}

func TestCLICompletionsAndManPages(t *testing.T) {
	w := newWorld(t)
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := w.ok("completions", sh)
		if !strings.Contains(r.stdout, "karapace") || len(r.stdout) < 500 {
			t.Errorf("completions %s: %d bytes", sh, len(r.stdout))
		}
	}
	w.fail(2, []string{"unsupported shell"}, "completions", "tcsh")
	// Environment arguments complete to the store's names and short ids.
	w.manifest("karapace.toml", "rolling")
	id := w.buildNamed("karapace.toml", "demo")
	for _, cmd := range []string{"enter", "exec", "destroy", "stop", "freeze", "archive", "inspect", "diff", "snapshots", "commit", "restore", "rename", "push"} {
		r := w.ok("__complete", cmd, "")
		if !strings.Contains(r.stdout, "demo\tbuilt "+id[:12]) || !strings.Contains(r.stdout, id[:12]+"\tbuilt demo") {
			t.Errorf("completion of %s: %s", cmd, r)
		}
	}
	if r := w.ok("__complete", "inspect", "de"); strings.Contains(r.stdout, id[:12]+"\t") && !strings.HasPrefix(id, "de") {
		t.Errorf("completion of a prefix offered the short id: %s", r)
	}
	if r := w.ok("__complete", "rename", "demo", ""); strings.Contains(r.stdout, "demo\t") {
		t.Errorf("completion of the second argument offered envs: %s", r)
	}
	dir := filepath.Join(w.dir, "man")
	r := w.ok("man-pages", dir)
	if r.stdout != "man pages written to "+dir+"\n" {
		t.Errorf("man-pages: %s", r)
	}
	for _, c := range append([]string{""}, allCommands...) {
		name := "karapace.1"
		if c != "" {
			name = "karapace-" + c + ".1"
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !strings.Contains(string(b), ".TH") {
			t.Errorf("man page %s: %v", name, err)
		}
	}
}

func TestCLIRemoteWithoutConfig(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")
	w.fail(1, []string{"error: ", "remote"}, "push", "demo")
	w.fail(1, []string{"error: ", "remote"}, "pull", "demo@latest")
	w.fail(1, []string{"remote url"}, "push", "demo", "--remote", "ftp://example.invalid")
}

// Two builds at once: both succeed, and the store stays consistent.
func TestCLIConcurrentBuilds(t *testing.T) {
	w := newWorld(t)
	w.env = append(w.env, "KARAPACE_MOCK_BUILD_DELAY=1500ms")
	w.manifest("a.toml", "image-a", "git")
	w.manifest("b/karapace.toml", "image-b")
	type out struct {
		r   result
		err error
	}
	done := make(chan out, 2)
	for _, m := range []string{"a.toml", "b/karapace.toml"} {
		go func() {
			c := w.cmd("build", m)
			var o, e strings.Builder
			c.Stdout, c.Stderr = &o, &e
			err := c.Run()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code, err = ee.ExitCode(), nil
			}
			done <- out{result{o.String(), e.String(), code}, err}
		}()
	}
	waited := false
	for range 2 {
		o := <-done
		if o.err != nil || o.r.code != 0 {
			t.Fatalf("concurrent build: %v %s", o.err, o.r)
		}
		waited = waited || strings.Contains(o.r.stderr, "waiting for the store lock")
	}
	var envs []core.Env
	w.jsonOK(&envs, "list")
	if len(envs) != 2 {
		t.Errorf("two builds gave %d environments", len(envs))
	}
	var v verifyResult
	w.jsonOK(&v, "verify-store")
	if v.Failed != 0 {
		t.Errorf("verify after concurrent builds: %+v", v)
	}
	t.Logf("one build waited for the other's lock: %v", waited)
}

// A command that finds the store lock held says so after a second, and --lock-timeout
// makes it give up (exit 3).
func TestCLILockWait(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "demo")
	// A build holds the lock only for its state changes (TestCLIExecWhileAnotherBuilds),
	// so the holder is this test.
	lk, err := store.NewLayout(w.store).TryLock(store.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	w.waitLocked()
	start := time.Now()
	r := w.run("--lock-timeout", "2s", "freeze", "demo")
	elapsed := time.Since(start)
	if r.code != 3 || !strings.Contains(r.stderr, "waiting for the store lock") {
		t.Errorf("freeze while the lock is held: %s", r)
	}
	if elapsed < 1500*time.Millisecond || elapsed > 6*time.Second {
		t.Errorf("gave up after %v, want about 2s", elapsed)
	}
	// SIGINT while waiting: exit 130 at once.
	waiter := w.cmd("archive", "demo")
	var werr syncBuffer
	waiter.Stderr = &werr
	if err := waiter.Start(); err != nil {
		t.Fatal(err)
	}
	defer waiter.Process.Kill()
	waitFor(t, 10*time.Second, "the waiting message", func() bool { return strings.Contains(werr.String(), "waiting for the store lock") })
	waiter.Process.Signal(syscall.SIGINT)
	if err := waiter.Wait(); err == nil || err.(*exec.ExitError).ExitCode() != 130 {
		t.Errorf("SIGINT while waiting for the lock: %v, stderr %q", err, werr.String())
	}
	// Without a timeout it waits for the holder and then succeeds.
	go func() {
		time.Sleep(time.Second)
		_ = lk.Unlock()
	}()
	w.ok("freeze", "demo")
}

// SIGINT during a long build: exit 130, and the store is left consistent.
func TestCLIInterrupt(t *testing.T) {
	w := newWorld(t)
	w.manifest("karapace.toml", "rolling", "git")
	w.env = append(w.env, "KARAPACE_MOCK_BUILD_DELAY=30s")
	c := w.cmd("build")
	var errb strings.Builder
	c.Stderr = &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	w.waitBuilding()
	if err := c.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 130 {
		t.Errorf("interrupted build: %v, stderr %q", err, errb.String())
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("the build took %v to stop", time.Since(start))
	}
	if !strings.Contains(errb.String(), "error: interrupted; the command stopped") || strings.Contains(errb.String(), "context canceled") {
		t.Errorf("interrupted build says: %q", errb.String())
	}
	w.env = w.env[:len(w.env)-1]
	var envs []core.Env
	w.jsonOK(&envs, "list")
	if len(envs) != 0 {
		t.Errorf("an interrupted build left %+v", envs)
	}
	var v verifyResult
	w.jsonOK(&v, "verify-store")
	if v.Failed != 0 {
		t.Errorf("verify after interrupt: %+v", v)
	}
	// SIGTERM too.
	w.env = append(w.env, "KARAPACE_MOCK_BUILD_DELAY=30s")
	c = w.cmd("build")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer c.Process.Kill()
	w.waitBuilding()
	c.Process.Signal(syscall.SIGTERM)
	if err := c.Wait(); err == nil || err.(*exec.ExitError).ExitCode() != 130 {
		t.Errorf("SIGTERM: %v", err)
	}
}

func TestCLINew(t *testing.T) {
	w := newWorld(t)
	r := w.ok("--json", "new", "demo", "--template", "minimal")
	w.golden("new.json", r.stdout)
	b, err := os.ReadFile(filepath.Join(w.dir, "karapace.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if tpl, _ := schema.TemplateByName("minimal"); string(b) != tpl.Manifest {
		t.Errorf("new --template minimal wrote\n%s\nnot the template\n%s", b, tpl.Manifest)
	}
	w.fail(1, []string{"refusing to overwrite existing ./karapace.toml (pass --force)"}, "new", "demo", "--template", "dev")
	r = w.ok("new", "demo", "--template", "dev", "--force")
	w.golden("new.txt", r.stdout)
	w.fail(1, []string{"no --template provided and stdin is not a TTY"}, "new", "x", "--force")
}

func TestCLIOutputHygiene(t *testing.T) {
	w := newWorld(t)
	w.env = append(w.env, "KARAPACE_LOG=debug")
	w.manifest("karapace.toml", "rolling")
	// With logs at debug, stdout still holds exactly one JSON document.
	var res buildResult
	r := w.jsonOK(&res, "build", "--name", "demo")
	if r.stderr == "" {
		t.Logf("no debug logs on stderr")
	}
	w.jsonOK(&[]core.Env{}, "-v", "list")
	w.jsonOK(&[]core.Env{}, "--trace", "list")
	// A closed stdout is not an error (karapace list | head -0).
	c := w.cmd("list")
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pr.Close()
	c.Stdout = pw
	err = c.Run()
	pw.Close()
	if err != nil {
		t.Errorf("list into a closed pipe: %v", err)
	}
}
