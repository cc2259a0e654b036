package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"
)

// levelTrace is below slog's debug level, for --trace and KARAPACE_LOG=trace.
const levelTrace = slog.LevelDebug - 4

// writeJSON prints v as the command's single JSON document: two-space indentation, no
// HTML escaping, a final newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}

// printf writes text output; a write error (a closed pipe) is returned so that the exit
// code mapping sees it.
func printf(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}

// isTerminal reports whether f is a terminal.
func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// colorEnabled follows the original: colour when stdout is a terminal, unless NO_COLOR
// is set or CLICOLOR=0; CLICOLOR_FORCE forces it.
func (g *globals) colorEnabled() bool {
	if v := g.getenv("CLICOLOR_FORCE"); v != "" && v != "0" {
		return true
	}
	if g.getenv("NO_COLOR") != "" || g.getenv("CLICOLOR") == "0" {
		return false
	}
	return g.isTTY(g.stdout)
}

// colorizeState colours a lowercase state name the way the original does; unknown
// states pass through unchanged.
func colorizeState(state string, color bool) string {
	if !color {
		return state
	}
	var code string
	switch state {
	case "built":
		code = "32"
	case "running":
		code = "1;36"
	case "defined":
		code = "33"
	case "frozen":
		code = "34"
	case "archived":
		code = "2"
	default:
		return state
	}
	return "\x1b[" + code + "m" + state + "\x1b[0m"
}

// padRight pads s to width columns, counting runes; colour is added after padding so
// that columns stay aligned (the original's B31).
func padRight(s string, width int) string {
	n := len([]rune(s))
	if n >= width {
		return s
	}
	return s + strings.Repeat(" ", width-n)
}

// logLevel decides the slog level: KARAPACE_LOG when set and valid, else --trace,
// else -v, else warn.
func logLevel(g *globals) slog.Level {
	if lvl, ok := parseLogLevel(g.getenv("KARAPACE_LOG")); ok {
		return lvl
	}
	switch {
	case g.trace:
		return levelTrace
	case g.verbose:
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

// parseLogLevel reads a KARAPACE_LOG value. Besides plain levels it accepts the
// original's filter directives (`karapace_core=debug,info`): the most verbose level
// named anywhere wins, since we have one logger.
func parseLogLevel(s string) (slog.Level, bool) {
	found := false
	best := slog.LevelError + 4
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if i := strings.LastIndexByte(part, '='); i >= 0 {
			part = part[i+1:]
		}
		var lvl slog.Level
		switch strings.ToLower(part) {
		case "trace":
			lvl = levelTrace
		case "debug":
			lvl = slog.LevelDebug
		case "info":
			lvl = slog.LevelInfo
		case "warn", "warning":
			lvl = slog.LevelWarn
		case "error":
			lvl = slog.LevelError
		case "off":
			lvl = slog.LevelError + 4
		default:
			continue
		}
		found = true
		if lvl < best {
			best = lvl
		}
	}
	return best, found
}

// newLogger writes plain `LEVEL message key=value` lines to w (stderr), without
// timestamps, as the original's log lines.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			if len(groups) == 0 && a.Key == slog.LevelKey {
				if lvl, ok := a.Value.Any().(slog.Level); ok && lvl <= levelTrace {
					return slog.String(slog.LevelKey, "TRACE")
				}
			}
			return a
		},
	}))
}

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }
func itoa(n int) string    { return strconv.Itoa(n) }
