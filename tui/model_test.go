package tui

import (
	"slices"
	"testing"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
)

func testRows() []row {
	mk := func(seed, name string, st core.State, backend string, size int64, updated string) row {
		id := schema.EnvID(schema.SumString(seed))
		e := core.Env{EnvID: id, ShortID: id.Short(), State: st, UpdatedAt: updated}
		if name != "" {
			e.Name = &name
		}
		return row{env: e, backend: backend, size: size}
	}
	return []row{
		mk("1", "zeta", core.Built, "namespace", 300, "2026-01-03T00:00:00+00:00"),
		mk("2", "", core.Frozen, "mock", 100, "2026-01-01T00:00:00+00:00"),
		mk("3", "alpha", core.Archived, "oci", 200, "2026-01-02T00:00:00.5+00:00"),
		mk("4", "Ünïcode", core.Running, "mock", -1, "garbage"),
	}
}

func names(m *model) []string {
	var out []string
	for _, i := range m.visible {
		out = append(out, m.rows[i].label())
	}
	return out
}

func TestModelSortAndFilter(t *testing.T) {
	var m model
	rows := testRows()
	m.setRows(rows)
	short2 := rows[1].env.ShortID
	for _, tc := range []struct {
		col  sortColumn
		desc bool
		want []string
	}{
		{sortName, false, []string{short2, "alpha", "zeta", "Ünïcode"}}, // no name sorts as ""
		{sortName, true, []string{"Ünïcode", "zeta", "alpha", short2}},
		{sortState, false, []string{"alpha", "zeta", short2, "Ünïcode"}}, // archived built frozen running
		{sortBackend, false, []string{short2, "Ünïcode", "zeta", "alpha"}},
		{sortSize, false, []string{"Ünïcode", short2, "alpha", "zeta"}}, // unknown first
		{sortUpdated, false, []string{"Ünïcode", short2, "alpha", "zeta"}},
	} {
		m.sortCol, m.desc = tc.col, tc.desc
		m.apply()
		if got := names(&m); !slices.Equal(got, tc.want) {
			t.Errorf("%s desc=%v: %v, want %v", tc.col, tc.desc, got, tc.want)
		}
	}
	m.sortCol, m.desc = sortName, false
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"", 4}, {"ALPHA", 1}, {"mock", 2}, {"frozen", 1}, {rows[2].env.EnvID.String()[20:40], 1},
		{"üNÏ", 1}, {"日本", 0}, {"\x00", 0}, {"[red]", 0},
	} {
		m.setFilter(tc.filter)
		if len(m.visible) != tc.want {
			t.Errorf("filter %q: %d rows, want %d", tc.filter, len(m.visible), tc.want)
		}
	}
	m.setFilter("")
	if p := m.find(rows[2].env.EnvID.String()); p != 1 {
		t.Errorf("find alpha: %d", p)
	}
	if p := m.find("nope"); p != -1 {
		t.Errorf("find nope: %d", p)
	}
}

func TestSortCycleOrder(t *testing.T) {
	var m model
	// The original's cycle, Name -> State -> ShortId, then the added columns, back to Name.
	want := []string{"State", "ShortId", "Backend", "Size", "Updated", "Name"}
	for _, w := range want {
		m.cycleSort()
		if m.sortCol.String() != w {
			t.Fatalf("after s: %s, want %s", m.sortCol, w)
		}
	}
	if m.sortLabel() != "Name ↑" {
		t.Fatal(m.sortLabel())
	}
	m.toggleDirection()
	if m.sortLabel() != "Name ↓" {
		t.Fatal(m.sortLabel())
	}
}

func TestFormatting(t *testing.T) {
	for n, want := range map[int64]string{-1: "…", 0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 3 << 50: "3072.0 TiB"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := formatTime("not a time"); got != "not a time" {
		t.Errorf("formatTime keeps unreadable stamps: %q", got)
	}
	if got := formatTime("2026-01-02T03:04:05+00:00"); len(got) != len("2006-01-02 15:04") {
		t.Errorf("formatTime: %q", got)
	}
}
