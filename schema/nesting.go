package schema

import (
	"bytes"
	"fmt"
)

// MaxNesting is the deepest nesting of arrays and inline tables accepted in a manifest
// or lock file. Ours need two levels; the TOML decoder takes time that grows much faster
// than the input with deeply nested inline tables (4000 levels take seconds), so deeper
// input is refused before it reaches the decoder.
const MaxNesting = 32

// MaxKeyParts is the most parts a dotted key may have (`a.b.c` has three). Ours have at
// most three; the decoder's time grows steeply with very long dotted keys.
const MaxKeyParts = 16

// checkNesting reports the first place where arrays and inline tables nest deeper than
// MaxNesting, or a dotted key has more than MaxKeyParts parts. It skips strings and
// comments; it validates nothing else (the decoder does).
func checkNesting(data []byte) error {
	depth, line, dots := 0, 1, 0
	for i := 0; i < len(data); i++ {
		c := data[i]
		// Count the dots of a run of key parts (`a . "b" . c`); anything that cannot be
		// part of a dotted key ends the run. Numbers and dates have at most one dot.
		switch {
		case c == '.':
			dots++
			if dots >= MaxKeyParts {
				return fmt.Errorf("line %d: dotted key with more than %d parts", line, MaxKeyParts)
			}
		case c == ' ' || c == '\t' || c == '"' || c == '\'' || c == '_' || c == '-' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9':
		default:
			dots = 0
		}
		switch c {
		case '\n':
			line++
		case '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case '"', '\'':
			end := skipString(data, i)
			line += bytes.Count(data[i:end], []byte("\n"))
			i = end - 1
		case '[', '{':
			depth++
			if depth > MaxNesting {
				return fmt.Errorf("line %d: arrays and inline tables nested deeper than %d levels", line, MaxNesting)
			}
		case ']', '}':
			if depth > 0 {
				depth--
			}
		}
	}
	return nil
}

// skipString returns the index just after the TOML string that starts at data[i] (a
// quote). An unterminated one-line string ends before its newline; an unterminated
// multi-line string runs to the end of the input.
func skipString(data []byte, i int) int {
	q := data[i]
	delim := []byte{q}
	multi := bytes.HasPrefix(data[i:], []byte{q, q, q})
	if multi {
		delim = []byte{q, q, q}
	}
	j := i + len(delim)
	for j < len(data) {
		switch {
		case q == '"' && data[j] == '\\':
			j += 2 // an escape: the next byte cannot end the string
		case data[j] == '\n' && !multi:
			return j
		case bytes.HasPrefix(data[j:], delim):
			j += len(delim)
			// A multi-line string may end with one or two quotes of its own: `"""a"""""`.
			for k := 0; multi && k < 2 && j < len(data) && data[j] == q; k++ {
				j++
			}
			return j
		default:
			j++
		}
	}
	return len(data)
}
