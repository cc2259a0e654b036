package schema

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// MarshalCompact encodes v as serde_json's compact form: no whitespace, no HTML escaping,
// U+2028 and U+2029 left raw, struct fields in declaration order. Every JSON that
// Karapace hashes goes through this function or MarshalPretty, so that hashes match the
// original implementation byte for byte.
func MarshalCompact(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeLineSeparators(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// MarshalPretty encodes v as serde_json's pretty printer does: two-space indentation,
// `": "` between key and value, `[]` and `{}` for empty containers, no trailing newline.
func MarshalPretty(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return unescapeLineSeparators(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
}

// unescapeLineSeparators turns Go's `\u2028` and `\u2029` escapes back into the raw
// characters, as serde_json writes them. Only escapes inside strings are touched, and an
// escaped backslash followed by the letters "u2028" is left alone.
func unescapeLineSeparators(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u202`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	inString := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			out = append(out, c)
			continue
		}
		switch c {
		case '"':
			inString = false
			out = append(out, c)
		case '\\':
			if i+5 < len(b) && b[i+1] == 'u' && b[i+2] == '2' && b[i+3] == '0' && b[i+4] == '2' && (b[i+5] == '8' || b[i+5] == '9') {
				r := rune(0x2028)
				if b[i+5] == '9' {
					r = 0x2029
				}
				out = utf8.AppendRune(out, r)
				i += 5
				continue
			}
			out = append(out, c)
			if i+1 < len(b) {
				out = append(out, b[i+1])
				i++
			}
		default:
			out = append(out, c)
		}
	}
	return out
}
