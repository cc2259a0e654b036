package cli

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"

	"github.com/karapace/karapace/schema"
)

// setImage returns the manifest text data with base.image set to image, keeping every
// comment and the layout: only the `image = ...` line of [base] changes. It reports
// false when the text is laid out in a way this edit does not handle (an inline table,
// a dotted key, no image line); the caller then re-encodes the whole manifest. The
// result is parsed back and must mean exactly the old manifest with the new image.
func setImage(data []byte, image string) ([]byte, bool) {
	old, err := schema.ParseManifest(data)
	if err != nil {
		return nil, false
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), schema.MaxManifestSize)
	table, done := "", false
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "[") {
			table = strings.TrimSpace(strings.Trim(strings.SplitN(trimmed, "#", 2)[0], "[] \t"))
		}
		if table == "base" && !done && strings.HasPrefix(trimmed, "image") {
			if rest := strings.TrimSpace(strings.TrimPrefix(trimmed, "image")); strings.HasPrefix(rest, "=") {
				indent := line[:len(line)-len(strings.TrimLeft(line, " \t"))]
				line = indent + "image = " + strconv.Quote(image) + trailingComment(strings.TrimSpace(rest[1:]))
				done = true
			}
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if sc.Err() != nil || !done {
		return nil, false
	}
	edited, err := schema.ParseManifest(out.Bytes())
	if err != nil || edited.Base.Image != image {
		return nil, false
	}
	old.Base.Image = image
	a, errA := old.Normalize()
	b, errB := edited.Normalize()
	if errA != nil || errB != nil || !bytes.Equal(a.CanonicalJSON(), b.CanonicalJSON()) {
		return nil, false
	}
	return out.Bytes(), true
}

// trailingComment returns the comment after a one-line string value (`"x"  # note`
// gives `  # note`), or "" when there is none or the value is not that simple.
func trailingComment(value string) string {
	if len(value) < 2 || (value[0] != '"' && value[0] != '\'') || strings.HasPrefix(value, `"""`) || strings.HasPrefix(value, "'''") {
		return ""
	}
	end := strings.IndexByte(value[1:], value[0])
	if end < 0 || strings.Contains(value[1:end+1], `\`) {
		return ""
	}
	rest := value[end+2:]
	if strings.HasPrefix(strings.TrimSpace(rest), "#") {
		return rest
	}
	return ""
}
