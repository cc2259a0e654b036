package tui

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/karapace/karapace/core"
)

// sortColumn is the list's sort key. `s` cycles through them in this order; the first
// three are the original's cycle (Name -> State -> ShortId), the rest our added columns.
type sortColumn int

const (
	sortName sortColumn = iota
	sortState
	sortShortID
	sortBackend
	sortSize
	sortUpdated
	numSortColumns
)

var sortNames = [numSortColumns]string{"Name", "State", "ShortId", "Backend", "Size", "Updated"}

func (c sortColumn) String() string { return sortNames[c] }

// row is one environment as the list shows it.
type row struct {
	env     core.Env
	backend string // "" while unknown
	size    int64  // -1 while unknown
}

func (r *row) label() string { return envLabel(&r.env) }

// envLabel is how messages name an environment: its name, or its short id.
func envLabel(e *core.Env) string {
	if n := e.DisplayName(); n != "" {
		return n
	}
	return e.ShortID
}

// model is the list's data: every environment, and the visible ones after sorting and
// filtering. It does no I/O and is only touched from the UI goroutine.
type model struct {
	rows    []row // as loaded, ordered by env id
	visible []int // indices into rows, sorted and filtered
	filter  string
	sortCol sortColumn
	desc    bool
}

func (m *model) setRows(rows []row) {
	m.rows = rows
	m.apply()
}

// apply recomputes visible: a stable sort on the sort column (ties keep the env-id
// order), then the filter.
func (m *model) apply() {
	idx := make([]int, len(m.rows))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		c := m.compare(&m.rows[a], &m.rows[b])
		if m.desc {
			c = -c
		}
		return c
	})
	m.visible = m.visible[:0]
	for _, i := range idx {
		if m.matches(&m.rows[i]) {
			m.visible = append(m.visible, i)
		}
	}
}

func (m *model) compare(a, b *row) int {
	switch m.sortCol {
	case sortState:
		return cmp.Compare(a.env.State.String(), b.env.State.String())
	case sortShortID:
		return cmp.Compare(a.env.ShortID, b.env.ShortID)
	case sortBackend:
		return cmp.Compare(a.backend, b.backend)
	case sortSize:
		return cmp.Compare(a.size, b.size)
	case sortUpdated:
		return parseTime(a.env.UpdatedAt).Compare(parseTime(b.env.UpdatedAt))
	default:
		return cmp.Compare(a.env.DisplayName(), b.env.DisplayName())
	}
}

// matches is the filter: a case-insensitive substring of the short id, env id, name,
// state or backend. Lowercasing is Unicode-aware, so any input is safe.
func (m *model) matches(r *row) bool {
	if m.filter == "" {
		return true
	}
	f := strings.ToLower(m.filter)
	for _, s := range []string{r.env.ShortID, r.env.EnvID.String(), r.env.DisplayName(), r.env.State.String(), r.backend} {
		if strings.Contains(strings.ToLower(s), f) {
			return true
		}
	}
	return false
}

func (m *model) cycleSort() {
	m.sortCol = (m.sortCol + 1) % numSortColumns
	m.apply()
}

func (m *model) toggleDirection() {
	m.desc = !m.desc
	m.apply()
}

func (m *model) setFilter(f string) {
	m.filter = f
	m.apply()
}

// sortLabel is "Name ↑" or "State ↓".
func (m *model) sortLabel() string {
	arrow := "↑"
	if m.desc {
		arrow = "↓"
	}
	return m.sortCol.String() + " " + arrow
}

// find returns the position in visible of the environment with that id, or -1.
func (m *model) find(id string) int {
	for i, ri := range m.visible {
		if m.rows[ri].env.EnvID.String() == id {
			return i
		}
	}
	return -1
}

// parseTime reads a metadata timestamp; an unreadable one sorts first.
func parseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// formatTime shows a metadata timestamp in local time to the minute; an unreadable one
// is shown as stored.
func formatTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.Local().Format("2006-01-02 15:04")
}

// formatSize is a byte count for humans: "0 B", "512 B", "4.0 KiB", "1.3 GiB"; a
// negative size is not known yet.
func formatSize(n int64) string {
	if n < 0 {
		return "…"
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || u == "TiB" {
			return fmt.Sprintf("%.1f %s", v, u)
		}
	}
	return ""
}
