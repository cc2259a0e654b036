package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func listSample(n int) []core.Env {
	var envs []core.Env
	names := []string{"", "demo", "über-ñame", `q"uote\<&>` + "\u2028", "a-name-longer-than-sixteen-columns"}
	for i := range n {
		id := schema.SumString(fmt.Sprint("env ", i))
		env := core.Env{
			EnvID: id, ShortID: id.Short(), State: core.State(i % 5),
			ManifestHash: schema.SumString(fmt.Sprint("m", i)).String(), DependencyLayers: []string{},
			CreatedAt: "2025-01-01T00:00:00+00:00", UpdatedAt: "2025-01-01T00:00:00+00:00", RefCount: uint32(i),
		}
		if name := names[i%len(names)]; name != "" {
			env.Name = &name
		}
		if i%2 == 0 {
			env.BaseLayer = schema.SumString(fmt.Sprint("b", i)).String()
			env.DependencyLayers = []string{schema.SumString("d").String(), schema.SumString("e").String()}
			p := schema.SumString("p").String()
			env.PolicyLayer = &p
			env.Checksum = schema.SumString(fmt.Sprint("c", i)).String()
		}
		if i%4 == 3 {
			// Every string field with what needs escaping, and a nil list (null).
			env.ShortID = "\x01\t\n\x7f"
			env.ManifestHash, env.BaseLayer = "\xff\xfe", "<>&"
			env.CreatedAt, env.UpdatedAt = "\u2029\\", "\x00"
			env.DependencyLayers = nil
			env.Checksum = "ok\"\""
		}
		envs = append(envs, env)
	}
	return envs
}

func printList(t *testing.T, p listPrinter, w *bufio.Writer, envs []core.Env) {
	t.Helper()
	for i := range envs {
		if err := p.env(&envs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.end(); err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// The streamed JSON array is byte for byte the document writeJSON prints for the slice.
func TestListJSONStreamsTheWholeDocument(t *testing.T) {
	for _, n := range []int{0, 1, 2, 9} {
		envs := listSample(n)
		var want, got bytes.Buffer
		whole := envs
		if whole == nil {
			whole = []core.Env{}
		}
		if err := writeJSON(&want, whole); err != nil {
			t.Fatal(err)
		}
		w := bufio.NewWriter(&got)
		printList(t, newJSONListPrinter(w), w, envs)
		if got.String() != want.String() {
			t.Fatalf("%d envs: streamed\n%s\nwhole\n%s", n, got.String(), want.String())
		}
	}
}

func TestListJSONInvalidStateIsAnError(t *testing.T) {
	env := listSample(1)[0]
	env.State = core.State(42)
	var out bytes.Buffer
	if err := writeJSON(&out, []core.Env{env}); err == nil {
		t.Fatal("writeJSON took an invalid state")
	}
	if err := newJSONListPrinter(bufio.NewWriter(&out)).env(&env); err == nil {
		t.Fatal("the streamed printer took an invalid state")
	}
}

// The table is the one the format-string version printed, colour or not.
func TestListTextRows(t *testing.T) {
	for _, color := range []bool{false, true} {
		for _, n := range []int{0, 6} {
			envs := listSample(n)
			var want bytes.Buffer
			if n == 0 {
				want.WriteString("no environments found\n")
			} else {
				fmt.Fprintf(&want, "%s %s %s %s\n", padRight("SHORT_ID", 14), padRight("NAME", 16), padRight("STATE", 10), "ENV_ID")
			}
			for i := range envs {
				env := &envs[i]
				state := env.State.String()
				fmt.Fprintf(&want, "%s %s %s %s\n", padRight(env.ShortID, 14), padRight(env.DisplayName(), 16),
					colorizeState(state, color)+padRight("", 10-len(state)), env.EnvID)
			}
			var got bytes.Buffer
			w := bufio.NewWriter(&got)
			printList(t, &textListPrinter{w: w, color: color}, w, envs)
			if got.String() != want.String() {
				t.Fatalf("color %v, %d envs: got\n%s\nwant\n%s", color, n, got.String(), want.String())
			}
		}
	}
}
