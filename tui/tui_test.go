package tui

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gdamore/tcell/v2"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/schema"
	"github.com/karapace/karapace/store"
)

// The original's 16 TUI tests ran on an empty store; these are their ports, asserting
// what is drawn, and then the tests of what the original lacked.

func TestEmptyStore(t *testing.T) {
	// A store that does not exist yet: shown as empty, and looking creates nothing.
	root := filepath.Join(t.TempDir(), "no-store-yet")
	h := start(t, root, 100, 20)
	defer func() {
		if _, err := os.Stat(root); !os.IsNotExist(err) {
			t.Errorf("viewing an absent store created it (%v)", err)
		}
	}()
	s := h.text()
	for _, want := range []string{"Karapace Environment Manager  v0.1.0-test", "Environments (0/0)", "No environments found", "SHORT_ID", "LAST CHANGE", "[q] quit"} {
		if !strings.Contains(s, want) {
			t.Errorf("missing %q on the screen:\n%s", want, s)
		}
	}
	// Keys that need a selection say so instead of acting (app_rename_mode_enter_exit,
	// app_detail_view_enter_back).
	h.keys("n")
	h.waitText("no environment selected")
	if m := state(h, func(u *ui) mode { return u.mode }); m != modeNormal {
		t.Errorf("n on an empty store entered mode %d", m)
	}
	h.key(tcell.KeyEnter)
	h.keys("?")
	h.waitText("Keybindings")
	h.key(tcell.KeyEscape)
	h.waitText("No environments found")
	if v := state(h, func(u *ui) string { return u.view }); v != viewList {
		t.Errorf("view %s, want list", v)
	}
	// A filter on an empty store (app_filter_with_no_envs).
	h.keys("/abc")
	h.key(tcell.KeyEnter)
	h.waitText("filter 'abc': 0 match(es)")
	h.waitText("Environments (0/0) matching 'abc'")
	for _, k := range "jkgGsSr" {
		h.keys(string(k))
	}
	h.keys("?")
	h.waitText("Keybindings")
}

func TestQuitKeys(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys func(h *harness)
	}{
		{"q", func(h *harness) { h.keys("q") }},
		{"ctrl-c", func(h *harness) { h.key(tcell.KeyCtrlC) }},
		{"q from detail returns, then quits", func(h *harness) {
			h.key(tcell.KeyEnter)
			h.waitText("Drift (writable layer)")
			h.keys("q")
			h.waitGone("Drift (writable layer)")
			h.keys("q")
		}},
		{"ctrl-c in the search field", func(h *harness) { h.keys("/xy"); h.key(tcell.KeyCtrlC) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			buildEnv(t, newEngine(t, root), "one")
			h := start(t, root, 100, 30)
			h.waitText("one")
			tc.keys(h)
			if err := h.stopped(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	scr := tcell.NewSimulationScreen("UTF-8")
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{StoreRoot: t.TempDir(), Backends: mockBackends(), Screen: scr}) }()
	time.Sleep(100 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

func TestListColumnsAndStates(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	buildEnv(t, e, "a-selected", "zsh")
	web := buildEnv(t, e, "web", "git", "curl")
	db := buildEnv(t, e, "db", "postgresql")
	if err := e.Freeze(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, 120, 20)
	s := h.waitFor("sizes", func(s string) bool { return !strings.Contains(s, "…") })
	w := inspect(t, e, web)
	line, y := h.line(w.ShortID)
	for _, want := range []string{"web", "built", "mock", formatTime(w.UpdatedAt), "KiB"} {
		if !strings.Contains(line, want) {
			t.Errorf("row %q lacks %q", line, want)
		}
	}
	if !strings.Contains(s, "Environments (3/3)") {
		t.Errorf("no count in the title:\n%s", s)
	}
	// State colours: built green, frozen blue.
	x := strings.Index(line, "built")
	if fg, _, _ := h.cellStyle(x, y).Decompose(); fg != tcell.ColorGreen {
		t.Errorf("built drawn in %v, want green", fg)
	}
	fline, fy := h.line("frozen")
	if fg, _, _ := h.cellStyle(strings.Index(fline, "frozen"), fy).Decompose(); fg != tcell.ColorCornflowerBlue {
		t.Errorf("frozen drawn in %v, want blue", fg)
	}
	// Sorted by name: db above web.
	if _, dy := h.line("db "); dy > y || dy < 0 {
		t.Errorf("db (row %d) should come before web (row %d)", dy, y)
	}
}

func TestNavigationKeys(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	names := []string{"alpha", "bravo", "charlie", "delta"}
	for i, n := range names {
		buildEnv(t, e, n, "pkg"+string(rune('a'+i)))
	}
	h := start(t, root, 100, 20)
	h.waitText("delta")
	sel := func() string {
		return state(h, func(u *ui) string {
			if e := u.current(); e != nil {
				return e.DisplayName()
			}
			return ""
		})
	}
	// The selected row is drawn highlighted.
	highlighted := func(name string) bool {
		_, y := h.line(name)
		_, bg, _ := h.cellStyle(2, y).Decompose()
		return bg == tcell.ColorDarkSlateGray
	}
	steps := []struct {
		press func()
		want  string
	}{
		{func() {}, "alpha"},
		{func() { h.keys("j") }, "bravo"},
		{func() { h.key(tcell.KeyDown) }, "charlie"},
		{func() { h.keys("k") }, "bravo"},
		{func() { h.key(tcell.KeyUp) }, "alpha"},
		{func() { h.keys("k") }, "alpha"}, // saturates at the top
		{func() { h.keys("G") }, "delta"},
		{func() { h.keys("j") }, "delta"}, // and at the bottom
		{func() { h.keys("g") }, "alpha"},
		{func() { h.key(tcell.KeyEnd) }, "delta"},
		{func() { h.key(tcell.KeyHome) }, "alpha"},
		{func() { h.key(tcell.KeyPgDn) }, "delta"},
		{func() { h.key(tcell.KeyPgUp) }, "alpha"},
	}
	for i, st := range steps {
		st.press()
		deadline := time.Now().Add(5 * time.Second)
		for sel() != st.want && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if got := sel(); got != st.want {
			t.Fatalf("step %d: selected %q, want %q", i, got, st.want)
		}
		if !highlighted(st.want) {
			t.Fatalf("step %d: %s is not drawn highlighted:\n%s", i, st.want, h.text())
		}
	}
	// The selection follows the environment across a re-sort.
	h.keys("j")
	h.keys("S")
	h.waitText("sort: Name ↓")
	if got := sel(); got != "bravo" {
		t.Fatalf("after re-sorting selected %q, want bravo", got)
	}
}

func TestHelpView(t *testing.T) {
	h := start(t, t.TempDir(), 100, 40)
	h.keys("?")
	s := h.waitText("Keybindings")
	for _, k := range keyHelp {
		if !strings.Contains(s, k[1]) {
			t.Errorf("help lacks %q", k[1])
		}
	}
	h.key(tcell.KeyEscape)
	h.waitGone("Keybindings")
	h.keys("?")
	h.waitText("Keybindings")
	h.keys("q")
	h.waitGone("Keybindings")
	h.keys("?")
	h.waitText("Keybindings")
	h.keys("?")
	h.waitGone("Keybindings")
	if err := func() error {
		select {
		case err := <-h.done:
			return errors.Join(errors.New("quit from help"), err)
		default:
			return nil
		}
	}(); err != nil {
		t.Fatal(err)
	}
}

func TestSearch(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	buildEnv(t, e, "web-app", "git")
	buildEnv(t, e, "web-db", "postgresql")
	buildEnv(t, e, "tools", "make")
	h := start(t, root, 100, 20)
	h.waitText("tools")
	// Live filtering while typing (app_search_typing).
	h.keys("/web")
	h.waitFor("the live filter", func(s string) bool {
		return strings.Contains(s, "Environments (2/3)") && !strings.Contains(s, "tools")
	})
	if m := state(h, func(u *ui) mode { return u.mode }); m != modeInput {
		t.Fatalf("mode %d while typing", m)
	}
	// Backspace (app_search_backspace), case-insensitivity.
	h.key(tcell.KeyBackspace2)
	h.key(tcell.KeyBackspace2)
	h.keys("EB-A")
	h.waitText("Environments (1/3)")
	h.key(tcell.KeyEnter)
	h.waitText("filter 'wEB-A': 1 match(es)")
	if f := state(h, func(u *ui) string { return u.m.filter }); f != "wEB-A" {
		t.Fatalf("filter %q", f)
	}
	// The state and the backend match too.
	h.keys("/")
	h.key(tcell.KeyCtrlU)
	h.keys("MOCK")
	h.key(tcell.KeyEnter)
	h.waitText("filter 'MOCK': 3 match(es)")
	// Non-ASCII input: a cursor counted in runes, no crash (fix of B6).
	h.keys("/")
	h.key(tcell.KeyCtrlU)
	h.keys("ünï日本😀")
	h.key(tcell.KeyLeft)
	h.key(tcell.KeyBackspace2)
	h.keys("x")
	h.waitText("No environment matches 'ünï日x😀'")
	// Esc leaves the search and clears the filter (app_search_mode_enter_exit).
	h.key(tcell.KeyEscape)
	h.waitText("filter cleared")
	h.waitText("Environments (3/3)")
	if f := state(h, func(u *ui) string { return u.m.filter }); f != "" {
		t.Fatalf("filter %q after Esc", f)
	}
	// Esc in the list clears a kept filter.
	h.keys("/tools")
	h.key(tcell.KeyEnter)
	h.waitText("Environments (1/3)")
	h.key(tcell.KeyEscape)
	h.waitText("Environments (3/3)")
}

func TestSortCycle(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	b := buildEnv(t, e, "bbb", "x")
	a := buildEnv(t, e, "aaa", "y")
	if err := e.Freeze(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	_ = a
	h := start(t, root, 100, 20)
	h.waitText("bbb")
	order := func() []string {
		_, ya := h.line("aaa")
		_, yb := h.line("bbb")
		if ya < yb {
			return []string{"aaa", "bbb"}
		}
		return []string{"bbb", "aaa"}
	}
	if o := order(); o[0] != "aaa" {
		t.Fatalf("default sort (Name ↑) gives %v", o)
	}
	want := []string{"State", "ShortId", "Backend", "Size", "Updated", "Name"}
	for _, col := range want {
		h.keys("s")
		h.waitText("sort: " + col + " ↑")
		if c := state(h, func(u *ui) string { return u.m.sortCol.String() }); c != col {
			t.Fatalf("sort column %s, want %s", c, col)
		}
		if col == "State" && order()[0] != "aaa" { // built < frozen
			t.Fatalf("by state: %v", order())
		}
	}
	h.keys("S")
	h.waitText("sort: Name ↓")
	if o := order(); o[0] != "bbb" {
		t.Fatalf("Name ↓ gives %v", o)
	}
	h.keys("S")
	h.waitText("sort: Name ↑")
}

func TestDetailView(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "web", "git", "curl")
	if _, err := e.Commit(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	upper := store.NewLayout(root).UpperDir(id)
	if err := os.WriteFile(filepath.Join(upper, "added.txt"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, 120, 50)
	h.waitText("web")
	h.key(tcell.KeyEnter)
	s := h.waitText("Drift (writable layer)")
	m := inspect(t, e, id)
	for _, want := range []string{
		" web ", id.String(), "state:", "built", "backend:", "mock", "base image:", "rolling",
		"packages:", "curl git", "Layers (1)", "base", short(m.BaseLayer), "Snapshots (1)", "restore key",
		"+ added.txt", "network:", "host",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("detail lacks %q:\n%s", want, s)
		}
	}
	// Live: a change made elsewhere shows up in the open detail view.
	if err := e.Rename(context.Background(), id, "renamed-elsewhere"); err != nil {
		t.Fatal(err)
	}
	h.waitText("renamed-elsewhere")
	// Destroyed elsewhere while shown: the view says so, and actions find nothing.
	if err := e.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	h.waitText("environment not found")
	h.keys("f")
	h.waitText("no environment selected")
	h.key(tcell.KeyEscape)
	h.waitText("Environments (0/0)")
}

func TestConfirmations(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "victim", "git")
	h := start(t, root, 100, 30)
	h.waitText("victim")
	// n cancels (app_confirm_cancel), as do Esc and the Cancel button.
	for _, cancel := range []func(){
		func() { h.keys("n") },
		func() { h.key(tcell.KeyEscape) },
		func() { h.key(tcell.KeyEnter) }, // Cancel has the focus
		func() { // a click on Cancel
			line, y := h.line("Cancel")
			x := utf8.RuneCountInString(line[:strings.Index(line, "Cancel")]) + 2
			h.scr.InjectMouse(x, y, tcell.Button1, tcell.ModNone)
			h.scr.InjectMouse(x, y, tcell.ButtonNone, tcell.ModNone)
		},
	} {
		h.keys("d")
		h.waitText("Destroy 'victim'")
		cancel()
		h.waitText("cancelled")
		h.waitGone("Destroy 'victim'")
	}
	if got := inspect(t, e, id).State; got != core.Built {
		t.Fatalf("state %s after cancelling", got)
	}
	// y confirms.
	h.keys("d")
	h.waitText("Destroy 'victim'")
	h.keys("y")
	h.waitText("destroyed 'victim'")
	h.idle()
	if _, err := e.Inspect(context.Background(), id); !errors.Is(err, core.ErrNotFound) {
		t.Fatalf("inspect after destroy: %v", err)
	}
	h.waitText("No environments found")
	// The message outlives the refresh that follows the action (fix of B6).
	if !strings.Contains(h.text(), "destroyed 'victim'") {
		t.Fatal("the status was overwritten by the refresh")
	}
}

func TestFreezeArchiveDestroyFromDetail(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "env1", "git")
	h := start(t, root, 100, 40)
	h.waitText("env1")
	h.keys("f")
	h.waitText("Freeze 'env1'?")
	h.key(tcell.KeyTab) // to the Freeze button
	h.key(tcell.KeyEnter)
	h.waitText("frozen 'env1'")
	h.idle()
	h.waitState(id, core.Frozen)
	h.waitFor("the frozen row", func(s string) bool { l, _ := h.line("env1"); return strings.Contains(l, "frozen") })
	// Entering a frozen environment is refused without suspending the UI.
	h.keys("e")
	h.waitText("cannot enter 'env1': it is frozen")
	h.keys("a")
	h.keys("y")
	h.waitText("archived 'env1'")
	h.idle()
	h.waitState(id, core.Archived)
	// An invalid transition: the error stays on screen through later refreshes.
	h.keys("f")
	h.keys("y")
	h.waitText("freeze 'env1' failed: invalid state transition: archived -> frozen")
	buildEnv(t, h.eng, "other", "make") // a change elsewhere: a live refresh
	h.waitText("other")
	if !strings.Contains(h.text(), "freeze 'env1' failed") {
		t.Fatal("the error did not stay until the next action")
	}
	// Destroy from the detail view goes back to the list.
	h.keys("/env1")
	h.key(tcell.KeyEnter)
	h.key(tcell.KeyEnter)
	h.waitText("Drift (writable layer)")
	h.keys("dy")
	h.waitText("destroyed 'env1'")
	h.waitGone("Drift (writable layer)")
	if v := state(h, func(u *ui) string { return u.view }); v != viewList {
		t.Fatalf("view %s after destroying from the detail view", v)
	}
}

func TestRename(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "old", "git")
	buildEnv(t, e, "taken", "make")
	h := start(t, root, 100, 20)
	h.waitText("taken")
	h.keys("/old")
	h.key(tcell.KeyEnter)
	h.waitText("Environments (1/2)")
	h.key(tcell.KeyEscape)
	h.waitText("Environments (2/2)")
	// Select "old" (sorted first).
	h.keys("g")
	h.keys("n")
	h.waitText("rename 'old' to:")
	h.keys("abc")
	h.key(tcell.KeyEscape)
	h.waitText("rename cancelled")
	if n := inspect(t, e, id).DisplayName(); n != "old" {
		t.Fatalf("name %q after a cancelled rename", n)
	}
	// Non-ASCII and invalid names are refused by the engine; the error stays.
	h.keys("n")
	h.waitText("rename 'old' to:")
	h.keys("nöm 日本")
	h.key(tcell.KeyEnter)
	h.waitText("rename 'old' failed")
	h.waitStatus("invalid environment name")
	h.idle()
	h.keys("n")
	h.waitText("rename 'old' to:")
	h.keys("taken")
	h.key(tcell.KeyEnter)
	h.waitStatus("already used")
	h.idle()
	h.keys("n")
	h.key(tcell.KeyEnter)
	h.waitText("rename cancelled: no name given")
	// A good name.
	h.keys("n")
	h.keys("new-name")
	h.key(tcell.KeyEnter)
	h.waitText("renamed 'old' to 'new-name'")
	h.waitFor("the renamed row", func(s string) bool { return strings.Contains(s, "new-name ") })
	if n := inspect(t, e, id).DisplayName(); n != "new-name" {
		t.Fatalf("name %q", n)
	}
	if !strings.Contains(h.text(), "renamed 'old' to 'new-name'") {
		t.Fatal("the refresh overwrote the rename message")
	}
}

func TestCommitAndRestore(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "snap", "git")
	upper := store.NewLayout(root).UpperDir(id)
	file := filepath.Join(upper, "work.txt")
	if err := os.WriteFile(file, []byte("version 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, 120, 30)
	h.waitText("snap")
	h.keys("R")
	h.waitText("'snap' has no snapshots yet: press c to commit one")
	h.keys("c")
	h.waitText("committed a snapshot of 'snap'")
	h.idle()
	snaps, err := e.Snapshots(context.Background(), id)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v, %v", snaps, err)
	}
	if !strings.Contains(h.text(), snaps[0].Key.Short()) {
		t.Errorf("the status lacks the restore key %s", snaps[0].Key.Short())
	}
	if err := os.WriteFile(file, []byte("version 2"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.keys("R")
	h.waitText("to which snapshot?")
	h.waitText(snaps[0].Key.String())
	h.key(tcell.KeyEnter)
	h.waitText("Restore 'snap' to snapshot " + snaps[0].ID.Short())
	h.keys("n")
	h.waitText("cancelled")
	if b, _ := os.ReadFile(file); string(b) != "version 2" {
		t.Fatalf("cancelled restore changed the file: %q", b)
	}
	h.key(tcell.KeyEnter)
	h.keys("y")
	h.waitText("restored 'snap' to snapshot " + snaps[0].ID.Short())
	if b, _ := os.ReadFile(file); string(b) != "version 1" {
		t.Fatalf("after restore the file holds %q", b)
	}
	if v := state(h, func(u *ui) string { return u.view }); v != viewList {
		t.Fatalf("view %s after restore", v)
	}
	// Esc leaves the picker.
	h.keys("R")
	h.waitText("to which snapshot?")
	h.key(tcell.KeyEscape)
	h.waitGone("to which snapshot?")
}

func TestEnterSuspendsAndResumes(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "shell", "bash")
	var got []schema.EnvID
	var sawRunning bool
	h := start(t, root, 100, 20, func(o *Options) {
		o.Enter = func(ctx context.Context, env core.Env) (int, error) {
			got = append(got, env.EnvID)
			// A real session: the engine records it, the environment runs meanwhile.
			code, err := newEngine(t, root).Exec(ctx, env.EnvID, runtimeStdio(), []string{"mock:exit", "3"})
			sawRunning = true
			return code, err
		}
	})
	h.waitText("shell")
	h.keys("e")
	h.waitText("session in 'shell' ended (exit status 3)")
	if len(got) != 1 || got[0] != id || !sawRunning {
		t.Fatalf("Enter called with %v", got)
	}
	h.waitState(id, core.Built)
	// An error from the session is shown.
	h2 := start(t, root, 100, 20, func(o *Options) {
		o.Enter = func(context.Context, core.Env) (int, error) { return 0, errors.New("no terminal here") }
	})
	h2.waitText("shell")
	h2.keys("e")
	h2.waitText("enter 'shell' failed: no terminal here")
}

func TestDefaultEnterUsesEngine(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "login", "bash")
	var out bytes.Buffer
	h := start(t, root, 100, 20, func(o *Options) { o.Stdout, o.Stderr, o.Stdin = &out, &out, strings.NewReader("") })
	h.waitText("login")
	h.keys("e")
	h.waitText("session in 'login' ended (exit status 0)")
	h.do(func() {}) // the session ran on the UI goroutine; out is settled
	if !strings.Contains(out.String(), "Entering 'login' ("+id.Short()+")") {
		t.Fatalf("output %q", out.String())
	}
	h.waitState(id, core.Built)
}

func TestLiveRefresh(t *testing.T) {
	root := t.TempDir()
	h := start(t, root, 100, 20)
	h.waitText("No environments found")
	id := buildEnv(t, h.eng, "appears", "git")
	h.waitText("appears")
	h.waitText("Environments (1/1)")
	if err := h.eng.Freeze(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	h.waitFor("frozen", func(s string) bool { l, _ := h.line("appears"); return strings.Contains(l, "frozen") })
	if err := h.eng.Destroy(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	h.waitText("No environments found")
}

func TestActionWaitsForStoreLock(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "locked", "git")
	h := start(t, root, 120, 20)
	h.waitText("locked")
	lk, err := store.NewLayout(root).Lock(context.Background(), store.Exclusive)
	if err != nil {
		t.Fatal(err)
	}
	// The UI itself holds no lock: another process could take it.
	h.keys("fy")
	h.waitText("waiting for the store lock")
	if got := inspect(t, e, id).State; got != core.Built {
		t.Fatalf("state %s while the lock is held elsewhere", got)
	}
	// A second action while the first waits is refused, not queued.
	h.keys("c")
	h.waitText("freeze is still running")
	if err := lk.Unlock(); err != nil {
		t.Fatal(err)
	}
	h.waitText("frozen 'locked'")
	h.waitState(id, core.Frozen)
}

func TestTinyTerminalsAndResizes(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	buildEnv(t, e, "a-very-long-environment-name-that-does-not-fit-anywhere", "git")
	buildEnv(t, e, "", "make")
	h := start(t, root, 100, 20)
	sizes := [][2]int{{10, 3}, {1, 1}, {0, 0}, {3, 2}, {20, 5}, {200, 60}, {40, 10}}
	for _, sz := range sizes {
		h.do(func() { h.scr.SetSize(sz[0], sz[1]) })
		h.u.app.QueueEvent(tcell.NewEventResize(sz[0], sz[1]))
		for _, k := range []string{"j", "k", "?", "q", "s", "S", "/", "ü", "\x1b", "\r", "q", "d", "\x1b", "n", "x", "\x1b", "R", "\x1b"} {
			switch k {
			case "\x1b":
				h.key(tcell.KeyEscape)
			case "\r":
				h.key(tcell.KeyEnter)
			default:
				h.keys(k)
			}
		}
		h.text() // the UI goroutine is alive and drawing
	}
	select {
	case err := <-h.done:
		t.Fatalf("the UI stopped: %v", err)
	default:
	}
	h.do(func() { h.scr.SetSize(100, 20) })
	h.u.app.QueueEvent(tcell.NewEventResize(100, 20))
	h.keys("?")
	h.waitText("Keybindings")
}

func TestMouse(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	for _, n := range []string{"m1", "m2", "m3"} {
		buildEnv(t, e, n, "p-"+n)
	}
	h := start(t, root, 100, 20)
	h.waitText("m3")
	_, y := h.line("m3 ")
	click := func() {
		h.scr.InjectMouse(5, y, tcell.Button1, tcell.ModNone)
		h.scr.InjectMouse(5, y, tcell.ButtonNone, tcell.ModNone)
	}
	click()
	deadline := time.Now().Add(5 * time.Second)
	for state(h, func(u *ui) string { return u.current().DisplayName() }) != "m3" {
		if time.Now().After(deadline) {
			t.Fatalf("a click on m3 did not select it:\n%s", h.text())
		}
		time.Sleep(10 * time.Millisecond)
	}
	click() // two quick clicks: a double click (with each other or the first) opens the detail
	click()
	h.waitText("Lock (what the env id pins)")
	h.waitText(" m3 ")
	h.key(tcell.KeyEscape)
	h.waitGone("Lock (what the env id pins)")
	h.scr.InjectMouse(5, y, tcell.WheelDown, tcell.ModNone)
	h.scr.InjectMouse(5, y, tcell.WheelUp, tcell.ModNone)
	h.waitText("m1")
}

func TestVersionMismatchRefused(t *testing.T) {
	root := t.TempDir()
	l := store.NewLayout(root)
	if err := os.MkdirAll(l.StoreDir(), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(l.VersionFile(), []byte(`{"format_version": 99}`), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := newUI(context.Background(), Options{StoreRoot: root, Backends: mockBackends(), Screen: tcell.NewSimulationScreen("UTF-8")})
	if !errors.Is(err, core.ErrStore) {
		t.Fatalf("err %v, want a store error", err)
	}
}

func TestPasteIsNeverTakenForKeys(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	id := buildEnv(t, e, "pasted", "git")
	buildEnv(t, e, "other", "make")
	h := start(t, root, 100, 20)
	h.waitText("pasted")
	// Everything through the application's event queue, in order.
	queue := func(text string) {
		for _, r := range text {
			h.u.app.QueueEvent(tcell.NewEventKey(tcell.KeyRune, r, tcell.ModNone))
		}
	}
	paste := func(text string) {
		h.u.app.QueueEvent(tcell.NewEventPaste(true))
		queue(text)
		h.u.app.QueueEvent(tcell.NewEventPaste(false))
	}
	paste("Gdyq")
	queue("?") // a key after the paste: once help shows, the paste was handled
	h.waitText("Keybindings")
	h.key(tcell.KeyEscape)
	h.waitText("[Enter] detail") // back in the list
	if got := inspect(t, e, id).State; got != core.Built {
		t.Fatalf("state %s", got)
	}
	// In the search field a paste is text.
	h.keys("/")
	h.waitGone("[Enter] detail") // the field is open once the status row is replaced
	paste("pAsT")
	h.waitText("Environments (1/2)")
	h.key(tcell.KeyEnter)
	h.waitText("filter 'pAsT': 1 match(es)")
}

// Run leaves nothing behind: every worker and watcher ends with it, whatever was in
// flight (a reload, an action waiting for the lock) when the user quit.
func TestRunLeavesNoGoroutines(t *testing.T) {
	root := t.TempDir()
	e := newEngine(t, root)
	buildEnv(t, e, "g1", "git")
	before := goruntime.NumGoroutine()
	for i := 0; i < 3; i++ {
		lk, err := store.NewLayout(root).Lock(context.Background(), store.Exclusive)
		if err != nil {
			t.Fatal(err)
		}
		scr := tcell.NewSimulationScreen("UTF-8")
		done := make(chan error, 1)
		go func() {
			done <- Run(context.Background(), Options{StoreRoot: root, Backends: mockBackends(), Screen: scr, PollInterval: 10 * time.Millisecond})
		}()
		time.Sleep(100 * time.Millisecond)
		// An action that waits for the lock, then quit while it waits.
		scr.InjectKey(tcell.KeyRune, 'f', tcell.ModNone)
		scr.InjectKey(tcell.KeyRune, 'y', tcell.ModNone)
		scr.InjectKey(tcell.KeyRune, 'r', tcell.ModNone)
		time.Sleep(50 * time.Millisecond)
		scr.InjectKey(tcell.KeyRune, 'q', tcell.ModNone)
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return")
		}
		if err := lk.Unlock(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for goruntime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := goruntime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:goruntime.Stack(buf, true)])
	}
}
