package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/karapace/karapace/core"
)

type listOptions struct {
	json  bool
	color bool
}

func newListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List environments",
		Long:    "List every environment, sorted by env_id. --json prints the metadata records.",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(cmd.Context(), g, listOptions{json: g.json, color: g.colorEnabled()})
		},
	}
}

// runList prints environments as the engine walks them, through one buffered writer, so
// a store of any size costs a batch of records in memory and a write per 64 KiB.
func runList(ctx context.Context, g *globals, opts listOptions) error {
	e, err := g.engineFor(ctx, true)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(g.stdout, 64<<10)
	var p listPrinter
	if opts.json {
		p = newJSONListPrinter(w)
	} else {
		p = &textListPrinter{w: w, color: opts.color}
	}
	if err := e.Each(ctx, p.env); err != nil {
		// What was printed so far is still flushed: a partial list, then the error.
		_ = w.Flush()
		return err
	}
	if err := p.end(); err != nil {
		return err
	}
	return w.Flush()
}

// listPrinter prints one environment at a time; end closes the output (or says that
// there was nothing to list).
type listPrinter interface {
	env(env *core.Env) error
	end() error
}

// textListPrinter prints the table: a header before the first row, each row's columns
// padded to fixed widths.
type textListPrinter struct {
	w     *bufio.Writer
	color bool
	n     int
	line  []byte
}

func (p *textListPrinter) env(env *core.Env) error {
	if p.n == 0 {
		if err := printf(p.w, "%s %s %s %s\n", padRight("SHORT_ID", 14), padRight("NAME", 16), padRight("STATE", 10), "ENV_ID"); err != nil {
			return err
		}
	}
	p.n++
	state := env.State.String()
	b := appendPadded(p.line[:0], env.ShortID, 14)
	b = append(b, ' ')
	b = appendPadded(b, env.DisplayName(), 16)
	b = append(b, ' ')
	// Pad first, colour after, so escape codes do not shift the columns.
	b = append(b, colorizeState(state, p.color)...)
	for i := len(state); i < 10; i++ {
		b = append(b, ' ')
	}
	b = append(b, ' ')
	b = hex.AppendEncode(b, env.EnvID[:])
	b = append(b, '\n')
	p.line = b
	_, err := p.w.Write(b)
	return err
}

func (p *textListPrinter) end() error {
	if p.n == 0 {
		return printf(p.w, "no environments found\n")
	}
	return nil
}

// appendPadded appends s padded to width columns, counting runes, as padRight does.
func appendPadded(b []byte, s string, width int) []byte {
	b = append(b, s...)
	for n := len([]rune(s)); n < width; n++ {
		b = append(b, ' ')
	}
	return b
}

// jsonListPrinter prints the JSON array element by element, byte for byte what
// writeJSON prints for the whole []core.Env (TestListJSONStreamsTheWholeDocument).
type jsonListPrinter struct {
	w   *bufio.Writer
	b   []byte
	enc *json.Encoder // for strings that need escaping
	str bytes.Buffer
	n   int
}

func newJSONListPrinter(w *bufio.Writer) *jsonListPrinter {
	p := &jsonListPrinter{w: w}
	p.enc = json.NewEncoder(&p.str)
	p.enc.SetEscapeHTML(false)
	return p
}

func (p *jsonListPrinter) env(env *core.Env) error {
	b := p.b[:0]
	if p.n == 0 {
		b = append(b, "[\n  "...)
	} else {
		b = append(b, ",\n  "...)
	}
	p.n++
	b, err := p.appendEnv(b, env)
	if err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	p.b = b
	_, err = p.w.Write(b)
	return err
}

func (p *jsonListPrinter) end() error {
	if p.n == 0 {
		_, err := p.w.WriteString("[]\n")
		return err
	}
	_, err := p.w.WriteString("\n]\n")
	return err
}

// appendEnv appends env as an element of the indented array: core.Env's fields, in
// its order, as encoding/json writes them with two-space indentation one level in.
// encoding/json would take ten times as long, through reflection.
func (p *jsonListPrinter) appendEnv(b []byte, env *core.Env) ([]byte, error) {
	state, err := env.State.MarshalText()
	if err != nil {
		return b, err
	}
	b = append(b, "{\n    \"env_id\": \""...)
	b = hex.AppendEncode(b, env.EnvID[:])
	b = append(b, "\",\n    \"short_id\": "...)
	b = p.appendString(b, env.ShortID)
	b = append(b, ",\n    \"name\": "...)
	b = p.appendOptString(b, env.Name)
	b = append(b, ",\n    \"state\": "...)
	b = p.appendString(b, string(state))
	b = append(b, ",\n    \"manifest_hash\": "...)
	b = p.appendString(b, env.ManifestHash)
	b = append(b, ",\n    \"base_layer\": "...)
	b = p.appendString(b, env.BaseLayer)
	b = append(b, ",\n    \"dependency_layers\": "...)
	switch {
	case env.DependencyLayers == nil:
		b = append(b, "null"...)
	case len(env.DependencyLayers) == 0:
		b = append(b, "[]"...)
	default:
		for i, d := range env.DependencyLayers {
			if i == 0 {
				b = append(b, "[\n      "...)
			} else {
				b = append(b, ",\n      "...)
			}
			b = p.appendString(b, d)
		}
		b = append(b, "\n    ]"...)
	}
	b = append(b, ",\n    \"policy_layer\": "...)
	b = p.appendOptString(b, env.PolicyLayer)
	b = append(b, ",\n    \"created_at\": "...)
	b = p.appendString(b, env.CreatedAt)
	b = append(b, ",\n    \"updated_at\": "...)
	b = p.appendString(b, env.UpdatedAt)
	b = append(b, ",\n    \"ref_count\": "...)
	b = strconv.AppendUint(b, uint64(env.RefCount), 10)
	if env.Checksum != "" {
		b = append(b, ",\n    \"checksum\": "...)
		b = p.appendString(b, env.Checksum)
	}
	return append(b, "\n  }"...), nil
}

func (p *jsonListPrinter) appendOptString(b []byte, s *string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	return p.appendString(b, *s)
}

// appendString quotes s as encoding/json does without HTML escaping: printable ASCII
// other than '"' and '\' as it is, anything else through encoding/json itself.
func (p *jsonListPrinter) appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			p.str.Reset()
			_ = p.enc.Encode(s) // a string always encodes
			return append(b, bytes.TrimSuffix(p.str.Bytes(), []byte("\n"))...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
