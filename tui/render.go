package tui

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/karapace/karapace/core"
)

// keyHelp is the help view, and the source of the hints in the status bar.
var keyHelp = [][2]string{
	{"j / ↓", "Move down"},
	{"k / ↑", "Move up"},
	{"g / Home", "Go to top"},
	{"G / End", "Go to bottom"},
	{"PgUp / PgDn", "Page up / down"},
	{"Enter", "View details (layers, snapshots, lock, drift)"},
	{"e", "Enter the environment: a shell; the UI comes back when it ends"},
	{"f", "Freeze (asks first)"},
	{"a", "Archive (asks first)"},
	{"d", "Destroy (asks first)"},
	{"n", "Rename"},
	{"c", "Commit a snapshot of the writable layer"},
	{"R", "Restore a snapshot (pick one, then confirm)"},
	{"/", "Search / filter (Enter keeps it, Esc clears it)"},
	{"s", "Cycle sort column: Name, State, ShortId, Backend, Size, Updated"},
	{"S", "Toggle sort direction"},
	{"r", "Refresh now and re-measure sizes"},
	{"?", "Show this help"},
	{"Esc", "Back; in the list, clear the filter"},
	{"q", "Back; in the list, quit (Ctrl-C quits anywhere)"},
	{"mouse", "Click selects, double-click opens, the wheel scrolls"},
}

func helpText() string {
	var b strings.Builder
	b.WriteString("[yellow::b]Keybindings[-:-:-]\n\n")
	for _, k := range keyHelp {
		fmt.Fprintf(&b, "  [::b]%-12s[-:-:-] %s\n", tview.Escape(k[0]), tview.Escape(k[1]))
	}
	b.WriteString("\nThe list follows the store: changes made by other karapace commands show up within a second.\n")
	b.WriteString("Actions take the store lock only while they run; a status message stays until the next action.\n")
	return b.String()
}

func (u *ui) renderHeader() {
	v := ""
	if u.opts.Version != "" {
		v = "  v" + strings.TrimPrefix(u.opts.Version, "v")
	}
	extra := fmt.Sprintf("sort %s", u.m.sortLabel())
	if u.m.filter != "" {
		extra += fmt.Sprintf("  filter '%s'", u.m.filter)
	}
	u.header.SetText(fmt.Sprintf("[aqua::b] Karapace Environment Manager%s[-:-:-]  [gray]%s  store %s[-]",
		tview.Escape(v), tview.Escape(extra), tview.Escape(displayPath(u.eng.Root()))))
}

// displayPath abbreviates the home directory to ~.
func displayPath(p string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return p
	}
	if p == home {
		return "~"
	}
	if rest, ok := strings.CutPrefix(p, home+string(filepath.Separator)); ok {
		return "~/" + rest
	}
	return p
}

var hints = map[string]string{
	viewList:      "[Enter] detail  [e] enter  [/] search  [s] sort  [?] help  [q] quit",
	viewDetail:    "[Esc] back  [e] enter  [c] commit  [R] restore  [f] freeze  [d] destroy",
	viewHelp:      "[Esc] back",
	viewSnapshots: "[Enter] restore  [Esc] back",
}

func (u *ui) renderStatus() {
	color := "white"
	if u.statusErr {
		color = "red::b"
	}
	msg := u.statusMsg
	if msg == "" {
		msg = "ready"
	}
	u.status.SetText(fmt.Sprintf(" [%s]%s[-:-:-] [gray]│ %s[-]", color, tview.Escape(msg), tview.Escape(hints[u.view])))
}

// stateColor is the original's palette.
func stateColor(s core.State) tcell.Style {
	st := tcell.StyleDefault
	switch s {
	case core.Built:
		return st.Foreground(tcell.ColorGreen)
	case core.Running:
		return st.Foreground(tcell.ColorAqua).Bold(true)
	case core.Defined:
		return st.Foreground(tcell.ColorYellow)
	case core.Frozen:
		return st.Foreground(tcell.ColorCornflowerBlue)
	case core.Archived:
		return st.Foreground(tcell.ColorGray)
	}
	return st
}

func stateTag(s core.State) string {
	switch s {
	case core.Built:
		return "[green]"
	case core.Running:
		return "[aqua::b]"
	case core.Defined:
		return "[yellow]"
	case core.Frozen:
		return "[cornflowerblue]"
	case core.Archived:
		return "[gray]"
	}
	return "[-]"
}

var listHeaders = []string{"SHORT_ID", "NAME", "STATE", "BACKEND", "SIZE", "LAST CHANGE"}

func (u *ui) renderList() {
	t := u.table
	t.Clear()
	total, vis := len(u.m.rows), len(u.m.visible)
	title := fmt.Sprintf(" Environments (%d/%d) ", vis, total)
	if u.m.filter != "" {
		title = fmt.Sprintf(" Environments (%d/%d) matching '%s' ", vis, total, u.m.filter)
	}
	u.listBox.SetTitle(tview.Escape(title))
	for c, h := range listHeaders {
		cell := tview.NewTableCell(h).SetSelectable(false).SetAttributes(tcell.AttrBold).SetTextColor(tcell.ColorYellow)
		if h == "SIZE" {
			cell.SetAlign(tview.AlignRight)
		}
		if h == "NAME" {
			cell.SetExpansion(1)
		}
		t.SetCell(0, c, cell)
	}
	note := ""
	switch {
	case !u.loaded:
		note = "loading…"
	case total == 0:
		note = "No environments found. Build one with 'karapace build'; press 'q' to quit."
	case vis == 0:
		note = fmt.Sprintf("No environment matches '%s'. Esc clears the filter.", u.m.filter)
	}
	u.note.SetText(tview.Escape(note))
	if note != "" {
		u.listBox.ResizeItem(u.table, 1, 0).ResizeItem(u.note, 0, 1)
	} else {
		u.listBox.ResizeItem(u.table, 0, 1).ResizeItem(u.note, 0, 0)
	}
	for i, ri := range u.m.visible {
		r := &u.m.rows[ri]
		name := r.env.DisplayName()
		if name == "" {
			name = "-"
		}
		cells := []*tview.TableCell{
			tview.NewTableCell(r.env.ShortID),
			tview.NewTableCell(tview.Escape(name)).SetExpansion(1),
			tview.NewTableCell(r.env.State.String()).SetStyle(stateColor(r.env.State)),
			tview.NewTableCell(tview.Escape(r.backend)),
			tview.NewTableCell(formatSize(r.size)).SetAlign(tview.AlignRight),
			tview.NewTableCell(tview.Escape(formatTime(r.env.UpdatedAt))),
		}
		for c, cell := range cells {
			t.SetCell(i+1, c, cell)
		}
	}
	if vis == 0 {
		u.selected = ""
		t.Select(0, 0)
		return
	}
	p := u.m.find(u.selected)
	if p < 0 {
		p = min(u.selPos, vis-1)
	}
	t.Select(p+1, 0)
	u.selected = u.m.rows[u.m.visible[p]].env.EnvID.String()
	u.renderHeader()
}

func renderDetail(d *detail) string {
	if d.err != nil {
		return "\n  [red]" + tview.Escape(d.err.Error()) + "[-]\n\n  [gray]Esc back[-]"
	}
	var b strings.Builder
	line := func(label, value string) {
		fmt.Fprintf(&b, "  [::b]%-14s[-:-:-] %s\n", label, value)
	}
	esc := tview.Escape
	e := &d.env
	name := e.DisplayName()
	if name == "" {
		name = "(none)"
	}
	backend := "?"
	if d.manifest != nil {
		backend = d.manifest.RuntimeBackend
	}
	line("env_id:", e.EnvID.String())
	line("short_id:", e.ShortID)
	line("name:", esc(name))
	line("state:", stateTag(e.State)+e.State.String()+"[-:-:-]")
	line("backend:", esc(backend))
	line("size:", formatSize(d.size))
	line("created_at:", esc(formatTime(e.CreatedAt)))
	line("updated_at:", esc(formatTime(e.UpdatedAt)))
	line("ref_count:", fmt.Sprint(e.RefCount))
	line("manifest:", esc(e.ManifestHash))

	section := func(title string) { fmt.Fprintf(&b, "\n [yellow::b]%s[-:-:-]\n", esc(title)) }
	section("Lock (what the env id pins)")
	switch {
	case d.manifestErr != nil:
		fmt.Fprintf(&b, "  [red]stored manifest unreadable: %s[-]\n", esc(d.manifestErr.Error()))
	default:
		n := d.manifest
		line("base image:", esc(n.BaseImage))
		line("packages:", esc(listOrNone(n.SystemPackages)))
		if len(n.GUIApps) > 0 {
			line("gui apps:", esc(strings.Join(n.GUIApps, " ")))
		}
		line("hardware:", fmt.Sprintf("gpu %s, audio %s", yesNo(n.HardwareGPU), yesNo(n.HardwareAudio)))
		mounts := make([]string, 0, len(n.Mounts))
		for _, m := range n.Mounts {
			mounts = append(mounts, m.HostPath+":"+m.ContainerPath)
		}
		line("mounts:", esc(listOrNone(mounts)))
		line("network:", map[bool]string{true: "isolated", false: "host"}[n.NetworkIsolation])
		limits := []string{}
		if n.CPUShares != nil {
			limits = append(limits, fmt.Sprintf("cpu shares %d", *n.CPUShares))
		}
		if n.MemoryLimitMB != nil {
			limits = append(limits, fmt.Sprintf("memory %d MB", *n.MemoryLimitMB))
		}
		line("limits:", esc(listOrNone(limits)))
	}

	section(fmt.Sprintf("Layers (%d)", len(d.layers)))
	if len(d.layers) == 0 {
		b.WriteString("  none (defined, not built)\n")
	}
	for _, l := range d.layers {
		if l.err != nil {
			fmt.Fprintf(&b, "  %-11s %s  [red]%s[-]\n", l.role, esc(short(l.hash)), esc(l.err.Error()))
			continue
		}
		fmt.Fprintf(&b, "  %-11s %s  %-9s %10s\n", l.role, esc(short(l.hash)), esc(l.kind), formatSize(l.size))
	}

	switch {
	case d.snapErr != nil:
		section("Snapshots")
		fmt.Fprintf(&b, "  [red]%s[-]\n", esc(d.snapErr.Error()))
	default:
		section(fmt.Sprintf("Snapshots (%d)", len(d.snapshots)))
		if len(d.snapshots) == 0 {
			b.WriteString("  none: press c to commit one\n")
		}
		for _, s := range d.snapshots {
			fmt.Fprintf(&b, "  %s  restore key %s\n", s.ID.Short(), s.Key.String())
		}
	}

	section("Drift (writable layer)")
	switch {
	case d.driftErr != nil:
		fmt.Fprintf(&b, "  [red]%s[-]\n", esc(d.driftErr.Error()))
	case !d.drift.HasDrift:
		b.WriteString("  no changes\n")
	default:
		fmt.Fprintf(&b, "  %d added, %d modified, %d removed\n", len(d.drift.Added), len(d.drift.Modified), len(d.drift.Removed))
		shown := 0
		for _, g := range []struct {
			mark, color string
			paths       []string
		}{{"+", "green", d.drift.Added}, {"~", "yellow", d.drift.Modified}, {"-", "red", d.drift.Removed}} {
			for _, p := range g.paths {
				if shown == 20 {
					break
				}
				fmt.Fprintf(&b, "  [%s]%s %s[-]\n", g.color, g.mark, esc(p))
				shown++
			}
		}
		if n := len(d.drift.Added) + len(d.drift.Modified) + len(d.drift.Removed); n > shown {
			fmt.Fprintf(&b, "  … and %d more (karapace diff shows all)\n", n-shown)
		}
	}
	b.WriteString("\n  [gray]Esc back  e enter  f freeze  a archive  d destroy  n rename  c commit  R restore[-]\n")
	return b.String()
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, " ")
}
