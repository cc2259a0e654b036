package schema

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/BurntSushi/toml"
)

// MaxManifestSize is the largest manifest accepted, in bytes. Real manifests are a few
// hundred bytes; the cap keeps a hostile or mistaken file from exhausting memory.
const MaxManifestSize = 1 << 20

// DefaultBackend is runtime.backend when the manifest does not set it.
const DefaultBackend = "namespace"

// Manifest is a parsed v1 manifest (karapace.toml), before normalization. Fields hold
// exactly what the file says, with the defaults of absent keys filled in.
type Manifest struct {
	ManifestVersion uint32            `toml:"manifest_version"`
	Base            BaseSection       `toml:"base"`
	System          SystemSection     `toml:"system"`
	GUI             GUISection        `toml:"gui"`
	Hardware        HardwareSection   `toml:"hardware"`
	Mounts          map[string]string `toml:"mounts"` // label -> "<host>:<container>"
	Runtime         RuntimeSection    `toml:"runtime"`
	// Env is [env], ours: variables every session of the environment gets (the deny
	// list still applies). Runtime configuration, not content: it is in the stored
	// manifest, not in the lock or the environment's id.
	Env map[string]string `toml:"env"`
}

// BaseSection is [base].
type BaseSection struct {
	Image string `toml:"image"`
}

// SystemSection is [system].
type SystemSection struct {
	Packages []string `toml:"packages"`
}

// GUISection is [gui].
type GUISection struct {
	Apps []string `toml:"apps"`
}

// HardwareSection is [hardware].
type HardwareSection struct {
	GPU   bool `toml:"gpu"`
	Audio bool `toml:"audio"`
}

// RuntimeSection is [runtime].
type RuntimeSection struct {
	Backend          string         `toml:"backend"`
	NetworkIsolation bool           `toml:"network_isolation"`
	ResourceLimits   ResourceLimits `toml:"resource_limits"`
}

// ResourceLimits is [runtime.resource_limits]; nil means no limit.
type ResourceLimits struct {
	CPUShares     *uint64 `toml:"cpu_shares"`
	MemoryLimitMB *uint64 `toml:"memory_limit_mb"`
}

// knownFields lists, per table, the keys the original accepts (its "deny unknown fields").
// [mounts] is absent: any key there is a label.
var knownFields = map[string][]string{
	"":                        {"manifest_version", "base", "system", "gui", "hardware", "mounts", "runtime", "env"},
	"base":                    {"image"},
	"system":                  {"packages"},
	"gui":                     {"apps"},
	"hardware":                {"gpu", "audio"},
	"runtime":                 {"backend", "network_isolation", "resource_limits"},
	"runtime.resource_limits": {"cpu_shares", "memory_limit_mb"},
}

// NewManifest returns a manifest for image with every other field at its default.
func NewManifest(image string) *Manifest {
	return &Manifest{
		ManifestVersion: 1,
		Base:            BaseSection{Image: image},
		System:          SystemSection{Packages: []string{}},
		GUI:             GUISection{Apps: []string{}},
		Mounts:          map[string]string{},
		Runtime:         RuntimeSection{Backend: DefaultBackend},
	}
}

// ParseManifest parses a v1 manifest. It checks structure and types only (unknown
// fields, missing required fields, wrong types); Normalize checks the values. Every
// error wraps ErrManifest and ErrManifestSyntax and names the line or the field.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, syntaxErr(nil, "manifest is %d bytes, more than the limit of %d bytes", len(data), MaxManifestSize)
	}
	if err := checkText(data); err != nil {
		return nil, syntaxErr(nil, "%v", err)
	}
	if err := checkNesting(data); err != nil {
		return nil, syntaxErr(nil, "%v", err)
	}
	m := &Manifest{Runtime: RuntimeSection{Backend: DefaultBackend}}
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(m)
	if err != nil {
		return nil, tomlErr(syntaxErr, err)
	}
	if err := checkUnknown(md, data, knownFields, "mounts", "env"); err != nil {
		return nil, syntaxErr(nil, "%v", err)
	}
	for _, req := range [][]string{{"manifest_version"}, {"base"}, {"base", "image"}} {
		if !md.IsDefined(req...) {
			return nil, syntaxErr(nil, "missing field `%s`", strings.Join(req, "."))
		}
	}
	// TOML integers are signed 64-bit; a value above MaxInt64 in a uint64 can only come
	// from a negative number, which the decoder converts without complaint.
	limits := []struct {
		key string
		v   *uint64
	}{
		{"runtime.resource_limits.cpu_shares", m.Runtime.ResourceLimits.CPUShares},
		{"runtime.resource_limits.memory_limit_mb", m.Runtime.ResourceLimits.MemoryLimitMB},
	}
	for _, l := range limits {
		if l.v != nil && *l.v > math.MaxInt64 {
			line := keyLine(data, strings.Split(l.key, "."))
			return nil, syntaxErr(nil, "%sinvalid value for `%s`: %d is negative, expected an unsigned integer", linePrefix(line), l.key, int64(*l.v))
		}
	}
	if m.System.Packages == nil {
		m.System.Packages = []string{}
	}
	if m.GUI.Apps == nil {
		m.GUI.Apps = []string{}
	}
	if m.Mounts == nil {
		m.Mounts = map[string]string{}
	}
	return m, nil
}

// LoadManifest reads and parses the manifest at path. A read failure wraps ErrManifestIO
// and the OS error (errors.Is(err, fs.ErrNotExist) works).
func LoadManifest(path string) (*Manifest, error) {
	data, err := readCapped(path, MaxManifestSize)
	if err != nil {
		return nil, manifestErr(ErrManifestIO, err, "failed to read manifest file: %s: %v", path, bareIOError(err))
	}
	return ParseManifest(data)
}

// errTooLarge is returned by readCapped for files over the cap.
var errTooLarge = errors.New("file too large")

// readCapped reads at most limit bytes of the file at path; a longer file is an error
// that wraps errTooLarge.
func readCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, limit)
	}
	return data, nil
}

// bareIOError drops the operation and path that *fs.PathError adds, since the callers
// print the path themselves.
func bareIOError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkText rejects input that is not UTF-8 text: invalid UTF-8 and NUL bytes, reported
// with their line and column. (TOML forbids both; checking first gives a clearer message
// than the TOML lexer does.)
func checkText(data []byte) error {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return fmt.Errorf("line %d, column %d: invalid UTF-8 byte 0x%02x", line, col, data[i])
		case r == 0:
			return fmt.Errorf("line %d, column %d: NUL byte", line, col)
		case r == '\n':
			line, col = line+1, 0
		}
		col++
		i += size
	}
	return nil
}

// tomlErr turns an error of the TOML decoder into one of ours, keeping its line, column
// and key, without the decoder's "toml: " prefix. The decoder's error stays in the chain
// (errors.As to toml.ParseError gives the caret snippet).
func tomlErr(wrap func(error, string, ...any) error, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		where := fmt.Sprintf("line %d, column %d", pe.Position.Line, pe.Position.Col)
		if pe.LastKey != "" {
			where += fmt.Sprintf(" (key `%s`)", pe.LastKey)
		}
		return wrap(err, "%s: %s", where, pe.Message)
	}
	// Type errors are plain errors: `toml: line 5 (last key "hardware.gpu"): incompatible
	// types: TOML value has type string; destination has type boolean`.
	msg := strings.TrimPrefix(err.Error(), "toml: ")
	if m := typeErrRE.FindStringSubmatch(msg); m != nil {
		msg = m[1] + "(key `" + m[2] + "`): " + m[3]
	}
	msg = strings.NewReplacer("type map[string]any", "type table", "type []map[string]any", "type array of tables",
		"type []any", "type array", "type float64", "type float", "type int64", "type integer").Replace(msg)
	return wrap(err, "%s", msg)
}

var typeErrRE = regexp.MustCompile(`^((?:line \d+ )?)\(last key "(.*)"\): (.*)$`)

// checkUnknown reports the first key of the document that was not decoded into a known
// field. Keys under the free-form tables in free are allowed.
func checkUnknown(md toml.MetaData, data []byte, known map[string][]string, free ...string) error {
	for _, k := range md.Undecoded() {
		if len(k) > 0 && contains(free, k[0]) {
			continue
		}
		parent := strings.Join(k[:len(k)-1], ".")
		expected, ok := known[parent]
		if !ok {
			// Below a field that is not a table (an inline table in a known value):
			// the decoder already reported a type error for these, so this is rare.
			expected = nil
		}
		where := ""
		if parent != "" {
			where = " in [" + parent + "]"
		}
		return fmt.Errorf("%sunknown field `%s`%s, %s", linePrefix(keyLine(data, k)), k[len(k)-1], where, expectedList(expected))
	}
	return nil
}

func expectedList(names []string) string {
	switch len(names) {
	case 0:
		return "expected no fields"
	case 1:
		return "expected `" + names[0] + "`"
	}
	return "expected one of `" + strings.Join(names, "`, `") + "`"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func linePrefix(line int) string {
	if line <= 0 {
		return ""
	}
	return fmt.Sprintf("line %d: ", line)
}

// keyLine finds the line where key is defined, for error messages about keys that the
// decoder accepted (it keeps key positions to itself). It understands table headers and
// dotted keys; it returns 0 when it cannot tell.
func keyLine(data []byte, key []string) int {
	var table []string
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			header := strings.TrimLeft(line, "[")
			if end := strings.Index(header, "]"); end >= 0 {
				header = header[:end]
			}
			table = splitKey(header)
			if hasPrefix(table, key) {
				return i + 1
			}
			continue
		}
		eq := strings.Index(line, "=")
		if eq < 0 {
			continue
		}
		full := append(append([]string{}, table...), splitKey(line[:eq])...)
		if hasPrefix(full, key) {
			return i + 1
		}
	}
	return 0
}

// splitKey splits a TOML key like `a."b.c" . d` into its parts (naively: good enough for
// locating a line).
func splitKey(s string) []string {
	var parts []string
	var cur strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(cur.String()))
}

// hasPrefix reports whether full starts with key.
func hasPrefix(full, key []string) bool {
	if len(full) < len(key) {
		return false
	}
	for i := range key {
		if full[i] != key[i] {
			return false
		}
	}
	return true
}

// Marshal encodes the manifest as the original's `new` command writes it (the toml
// crate's pretty serializer): every section written out, empty tables as bare headers,
// absent limits omitted, arrays of two or more strings one element per line, mounts in
// label order. Comments of a template are not kept.
func (m *Manifest) Marshal() []byte {
	var b strings.Builder
	kv := func(key, value string) { b.WriteString(tomlKey(key) + " = " + value + "\n") }
	kv("manifest_version", fmt.Sprint(m.ManifestVersion))
	b.WriteString("\n[base]\n")
	kv("image", tomlString(m.Base.Image))
	b.WriteString("\n[system]\n")
	kv("packages", tomlStringArray(m.System.Packages))
	b.WriteString("\n[gui]\n")
	kv("apps", tomlStringArray(m.GUI.Apps))
	b.WriteString("\n[hardware]\n")
	kv("gpu", fmt.Sprint(m.Hardware.GPU))
	kv("audio", fmt.Sprint(m.Hardware.Audio))
	// A table of strings, in key order.
	table := func(name string, t map[string]string) {
		b.WriteString("\n[" + name + "]\n")
		keys := make([]string, 0, len(t))
		for k := range t {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kv(k, tomlString(t[k]))
		}
	}
	table("mounts", m.Mounts)
	b.WriteString("\n[runtime]\n")
	kv("backend", tomlString(m.Runtime.Backend))
	kv("network_isolation", fmt.Sprint(m.Runtime.NetworkIsolation))
	b.WriteString("\n[runtime.resource_limits]\n")
	if v := m.Runtime.ResourceLimits.CPUShares; v != nil {
		kv("cpu_shares", fmt.Sprint(*v))
	}
	if v := m.Runtime.ResourceLimits.MemoryLimitMB; v != nil {
		kv("memory_limit_mb", fmt.Sprint(*v))
	}
	if len(m.Env) > 0 {
		// Only when set: without it the original's `new` writes the same bytes.
		table("env", m.Env)
	}
	return []byte(b.String())
}

// tomlKey writes a key bare when TOML allows it, quoted otherwise.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return tomlString(k)
		}
	}
	return k
}
