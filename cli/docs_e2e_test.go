package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/karapace/karapace/runtime/testrootfs"
)

// docBlocks returns the code blocks of a Markdown file's section (from the heading to the
// next heading of the same level): fenced blocks with their info string ("toml", ""),
// and indented blocks as "indented".
func docBlocks(t *testing.T, path, heading string) []docBlock {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("%s has no section %q", path, heading)
	}
	text = text[i+len(heading)+2:]
	level := heading[:strings.IndexByte(heading, ' ')+1]
	if j := strings.Index(text, "\n"+level); j >= 0 {
		text = text[:j]
	}
	var blocks []docBlock
	var cur *docBlock
	for _, line := range strings.Split(text, "\n") {
		switch {
		case cur != nil && cur.kind != "indented" && strings.HasPrefix(line, "```"):
			blocks, cur = append(blocks, *cur), nil
		case cur != nil && cur.kind != "indented":
			cur.lines = append(cur.lines, line)
		case strings.HasPrefix(line, "```"):
			cur = &docBlock{kind: strings.TrimPrefix(line, "```")}
		case strings.HasPrefix(line, "    "):
			if cur == nil {
				cur = &docBlock{kind: "indented"}
			}
			cur.lines = append(cur.lines, line[4:])
		case cur != nil && cur.kind == "indented" && strings.TrimSpace(line) == "":
			blocks, cur = append(blocks, *cur), nil
		}
	}
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return blocks
}

type docBlock struct {
	kind  string
	lines []string
}

// commentRE is a shell comment after a command (two spaces or more, then #).
var commentRE = regexp.MustCompile(`\s{2,}#.*$`)

// commands are the karapace command lines of blocks, comments and continuation lines
// (lines that start with #) dropped.
func commands(blocks []docBlock) [][]string {
	var out [][]string
	for _, b := range blocks {
		if b.kind != "" && b.kind != "indented" {
			continue
		}
		for _, l := range b.lines {
			l = strings.TrimSpace(commentRE.ReplaceAllString(l, ""))
			if strings.HasPrefix(l, "karapace ") {
				out = append(out, strings.Fields(l)[1:])
			}
		}
	}
	return out
}

func tomlBlock(t *testing.T, blocks []docBlock) string {
	t.Helper()
	for _, b := range blocks {
		if b.kind == "toml" {
			return strings.Join(b.lines, "\n") + "\n"
		}
	}
	t.Fatal("no toml block")
	return ""
}

// TestCLIReadmeAndGettingStarted follows README.md's "Use" section and
// docs/getting-started.md as a fresh user (a clean account, home and store), command
// by command, against the built binary and a Debian image served over loopback. Only
// what needs a terminal (enter, tui) or a real remote (push, pull to the example host)
// is left out, and said so; everything else must exit 0.
func TestCLIReadmeAndGettingStarted(t *testing.T) {
	srv := testrootfs.DebianServer(t, "bookworm")
	u := testrootfs.RootlessUser(t)
	skip := map[string]string{"enter": "needs a terminal (TestCLINamespaceBackend drives it in tmux)",
		"tui": "needs a terminal (tui_e2e_test.go)", "push": "names an example remote (remote_e2e_test.go)",
		"pull": "names an example remote (remote_e2e_test.go)", "doctor": "reports this machine, exit 1 when a check fails (TestCLIDoctor)",
		"man-pages": "writes into the user's man directory (TestCLICompletionsAndManPages)"}
	run := func(w *world, args []string, replace map[string]string) result {
		t.Helper()
		for i, a := range args {
			if v, ok := replace[a]; ok {
				args[i] = v
			}
		}
		if why, ok := skip[args[0]]; ok {
			t.Logf("not run: karapace %s: %s", strings.Join(args, " "), why)
			return result{}
		}
		return w.ok(args...)
	}

	t.Run("README", func(t *testing.T) {
		w := userWorld(t, u)
		w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
		blocks := docBlocks(t, "../README.md", "## Use")
		w.write("karapace.toml", tomlBlock(t, blocks))
		cmds := commands(blocks)
		if len(cmds) < 5 {
			t.Fatalf("README's Use section has %d commands", len(cmds))
		}
		for _, c := range cmds {
			r := run(w, c, nil)
			if c[0] == "exec" && !strings.Contains(r.stdout, "git version") {
				t.Errorf("karapace %v: %s", c, r)
			}
		}
		releaseKeepers(t, w.store)
	})

	t.Run("getting-started", func(t *testing.T) {
		w := userWorld(t, u)
		w.env = append(w.env, "KARAPACE_IMAGE_SERVER="+srv.URL)
		// `mkdir myproject && cd myproject`
		w.dir = filepath.Join(w.dir, "myproject")
		if err := os.Mkdir(w.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(w.dir, u.UID, u.GID); err != nil {
			t.Fatal(err)
		}
		blocks := docBlocks(t, "../docs/getting-started.md", "## A first environment")
		cmds := commands(blocks)
		if len(cmds) == 0 || cmds[0][0] != "new" {
			t.Fatalf("getting-started does not start with new: %v", cmds)
		}
		run(w, cmds[0], nil)
		// The page then shows a minimal manifest to use instead, and its project has a
		// Makefile for `exec myproject -- make test`.
		w.write("karapace.toml", tomlBlock(t, blocks))
		w.write("Makefile", "test:\n\t@echo the tests pass\n")
		for _, c := range cmds[1:] {
			run(w, c, nil)
		}
		using := commands(docBlocks(t, "../docs/getting-started.md", "## Using it"))
		for _, c := range using {
			r := run(w, c, nil)
			if c[0] == "exec" && r.stdout != "the tests pass\n" {
				t.Errorf("karapace %v: %s", c, r)
			}
		}
		tracking := commands(docBlocks(t, "../docs/getting-started.md", "## Tracking changes"))
		w.ok("exec", "myproject", "--", "sh", "-c", "echo change > /root/changed")
		var snapshot string
		for _, c := range tracking {
			r := run(w, c, map[string]string{"<snapshot>": snapshot})
			if c[0] == "diff" && !strings.Contains(r.stdout, "root/changed") {
				t.Errorf("diff after a change: %s", r)
			}
			if c[0] == "commit" {
				// "committed snapshot <hash> for <env>"
				if f := strings.Fields(r.stdout); len(f) > 2 {
					snapshot = f[2]
				}
			}
		}
		releaseKeepers(t, w.store)
	})
}
