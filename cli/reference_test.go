package cli

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const (
	referencePath  = "../docs/cli-reference.md"
	referenceBegin = "<!-- BEGIN GENERATED: go test ./cli -run TestCLIReference -update -->\n"
	referenceEnd   = "<!-- END GENERATED -->\n"
)

// TestCLIReference checks that docs/cli-reference.md describes the real commands and
// flags; -update regenerates its command section.
func TestCLIReference(t *testing.T) {
	g := &globals{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		getenv: func(string) string { return "" }, isTTY: func(any) bool { return false }}
	var b strings.Builder
	if err := writeReference(&b, newRootCommand(g)); err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	i, j := strings.Index(text, referenceBegin), strings.Index(text, referenceEnd)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the generated-section markers", referencePath)
	}
	want := text[:i+len(referenceBegin)] + b.String() + text[j:]
	if *update {
		if err := os.WriteFile(referencePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if want != text {
		t.Errorf("%s is out of date with the commands: run go test ./cli -run TestCLIReference -update", referencePath)
	}
}

// TestCLIReferenceClaims checks the hand-written parts of docs/cli-reference.md against
// the binary: the command count, every command in the JSON table or among those without
// a JSON form, and each exit code of the table for a command that gives it.
func TestCLIReferenceClaims(t *testing.T) {
	doc, err := os.ReadFile(referencePath)
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	g := &globals{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard,
		getenv: func(string) string { return "" }, isTTY: func(any) bool { return false }}
	var cmds []string
	for _, c := range newRootCommand(g).Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
			cmds = append(cmds, c.Name())
		}
	}
	if want := "There\nare " + strconv.Itoa(len(cmds)) + " commands"; !strings.Contains(strings.ReplaceAll(text, "There are", "There\nare"), want) {
		t.Errorf("the reference does not say there are %d commands (%v)", len(cmds), cmds)
	}
	table := text[strings.Index(text, "| command | `--json` document |"):]
	table = table[:strings.Index(table, "\n\n")]
	end := strings.Index(text, "have no JSON form")
	if end < 0 {
		t.Fatal("the reference does not say which commands have no JSON form")
	}
	noJSON := text[max(0, end-200):end]
	for _, c := range cmds {
		if !strings.Contains(table, "`"+c+"`") && !strings.Contains(noJSON, "`"+c+"`") {
			t.Errorf("command %s is neither in the JSON table nor among those without a JSON form", c)
		}
	}
	// The exit codes table, against the binary.
	w := newWorld(t)
	w.fail(2, nil, "bogus")                                              // usage error
	w.fail(1, []string{"no environment matching"}, "inspect", "nothing") // failure
	w.write("karapace.toml", "manifest_version = 7\n")
	w.fail(2, nil, "build") // manifest error
	w.manifest("karapace.toml", "rolling")
	w.buildNamed("karapace.toml", "e")
	if err := os.WriteFile(filepath.Join(w.store, "store", "version"), []byte(`{"format_version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	w.fail(3, nil, "list") // store error
}
