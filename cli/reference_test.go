package cli

import (
	"io"
	"os"
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
