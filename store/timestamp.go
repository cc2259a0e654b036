package store

import (
	"strconv"
	"time"
)

// FormatTime renders t in UTC the way the original (chrono's to_rfc3339) does:
// YYYY-MM-DDTHH:MM:SS, then a fraction of 3, 6 or 9 digits (the shortest that is exact,
// none when the nanoseconds are zero), then "+00:00". Timestamps are opaque strings
// on read; this only keeps new files looking like the original's.
func FormatTime(t time.Time) string {
	t = t.UTC()
	b := t.AppendFormat(make([]byte, 0, 35), "2006-01-02T15:04:05")
	if ns := t.Nanosecond(); ns != 0 {
		digits := 9
		switch {
		case ns%1_000_000 == 0:
			ns /= 1_000_000
			digits = 3
		case ns%1_000 == 0:
			ns /= 1_000
			digits = 6
		}
		frac := strconv.Itoa(ns)
		b = append(b, '.')
		for i := len(frac); i < digits; i++ {
			b = append(b, '0')
		}
		b = append(b, frac...)
	}
	return string(append(b, "+00:00"...))
}
