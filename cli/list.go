package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"

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
// writeJSON prints for the whole []core.Env.
type jsonListPrinter struct {
	w   *bufio.Writer
	buf bytes.Buffer
	enc *json.Encoder
	n   int
}

func newJSONListPrinter(w *bufio.Writer) *jsonListPrinter {
	p := &jsonListPrinter{w: w}
	p.enc = json.NewEncoder(&p.buf)
	// Each element sits one level into the array: its lines after the first carry the
	// array's indentation as a prefix.
	p.enc.SetIndent("  ", "  ")
	p.enc.SetEscapeHTML(false)
	return p
}

func (p *jsonListPrinter) env(env *core.Env) error {
	p.buf.Reset()
	if err := p.enc.Encode(env); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	sep := ",\n  "
	if p.n == 0 {
		sep = "[\n  "
	}
	p.n++
	if _, err := p.w.WriteString(sep); err != nil {
		return err
	}
	_, err := p.w.Write(bytes.TrimSuffix(p.buf.Bytes(), []byte("\n")))
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
