package tui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/karapace/karapace/core"
	"github.com/karapace/karapace/runtime"
	"github.com/karapace/karapace/schema"
)

// Options configure the terminal UI.
type Options struct {
	// Engine drives the store. When nil, Run builds one on StoreRoot with Backends and
	// Logger, after checking the store's format version. An Engine passed in must not
	// write to the terminal (no OnLockWait printing to stderr, no logger on stderr):
	// the UI owns the screen.
	Engine    *core.Engine
	StoreRoot string
	Backends  map[string]func() runtime.Backend
	// RemoveTree is handed to the Engine (core.Options.RemoveTree).
	RemoveTree func(ctx context.Context, path string) error
	// Logger receives diagnostics; nil discards them. It must not write to the terminal.
	Logger *slog.Logger
	// Version is shown in the header ("" shows none).
	Version string
	// Screen is the terminal; nil opens the controlling terminal (/dev/tty), and Run
	// fails with ErrTerminal when there is none. Tests pass a tcell simulation screen.
	Screen tcell.Screen
	// Enter runs an interactive session in env while the UI is suspended and returns
	// its exit status. Nil runs the environment's login shell through Engine.Enter on
	// Stdin, Stdout and Stderr (os.Stdin, os.Stdout and os.Stderr when nil).
	Enter  func(ctx context.Context, env core.Env) (int, error)
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// PollInterval is how often the store is checked for changes made elsewhere; 0 is
	// one second, a negative value turns live refresh off.
	PollInterval time.Duration
}

// ErrTerminal is returned when the terminal cannot be opened or driven.
var ErrTerminal = errors.New("terminal error")

// Run shows the UI until the user quits or ctx is cancelled. It takes the store lock
// only for actions, through the Engine.
func Run(ctx context.Context, opts Options) error {
	u, err := newUI(ctx, opts)
	if err != nil {
		return err
	}
	return u.run()
}

// Views and input modes.
const (
	viewList      = "list"
	viewDetail    = "detail"
	viewHelp      = "help"
	viewSnapshots = "snapshots"
	pageConfirm   = "confirm"
)

type mode int

const (
	modeNormal  mode = iota
	modeInput        // the search or rename field has the keyboard
	modeConfirm      // a confirmation dialog is open
)

// ui is the running application. Everything below app is touched only on tview's event
// goroutine; background work (engine calls, store reads) runs in spawned goroutines
// and hands its results back through post.
type ui struct {
	opts   Options
	eng    *core.Engine
	in     *inspector
	ctx    context.Context
	cancel context.CancelFunc

	quit      chan struct{}
	stopOnce  sync.Once
	started   chan struct{} // closed at the first draw: the event loop runs
	runDone   chan struct{} // closed when the application's Run has returned
	startOnce sync.Once
	updates   chan func()
	wg        sync.WaitGroup

	app        *tview.Application
	pages      *tview.Pages
	header     *tview.TextView
	table      *tview.Table
	listBox    *tview.Flex // the table's frame, with note below the header when empty
	note       *tview.TextView
	detailView *tview.TextView
	helpView   *tview.TextView
	picker     *tview.Table
	status     *tview.TextView
	input      *tview.InputField
	bottom     *tview.Pages

	m         model
	loaded    bool
	seq       uint64 // the latest reload; older results are dropped
	selected  string // env id of the selected row ("" when none)
	selPos    int
	view      string
	mode      mode
	statusMsg string
	statusErr bool
	busy      string // the action in progress, if any

	detailID  schema.EnvID // the environment the detail and snapshot views show
	det       *detail
	snaps     []core.Snapshot
	pickerRet string
}

func newUI(ctx context.Context, opts Options) (*ui, error) {
	u := &ui{opts: opts, quit: make(chan struct{}), started: make(chan struct{}), runDone: make(chan struct{}), updates: make(chan func()), view: viewList}
	u.ctx, u.cancel = context.WithCancel(ctx)
	u.eng = opts.Engine
	if u.eng == nil {
		if opts.StoreRoot == "" {
			u.cancel()
			return nil, fmt.Errorf("%w: no store root given", core.ErrStore)
		}
		eng, err := core.New(ctx, core.Options{
			StoreRoot: opts.StoreRoot, Backends: opts.Backends, Logger: opts.Logger, RemoveTree: opts.RemoveTree,
			// Called from the goroutine waiting for the lock, never the UI's.
			OnLockWait: func(w core.LockWait) { go u.post(func() { u.setStatus(w.String()+"…", false) }) },
		})
		if err != nil {
			u.cancel()
			return nil, err
		}
		u.eng = eng
	}
	if u.opts.Enter == nil {
		u.opts.Enter = u.defaultEnter
	}
	if u.opts.PollInterval == 0 {
		u.opts.PollInterval = time.Second
	}
	u.in = newInspector(u.eng.Root())
	u.build()
	return u, nil
}

// defaultEnter runs the environment's login shell on the process's terminal.
func (u *ui) defaultEnter(ctx context.Context, env core.Env) (int, error) {
	stdio := runtime.Stdio{Stdin: u.opts.Stdin, Stdout: u.opts.Stdout, Stderr: u.opts.Stderr}
	if stdio.Stdin == nil {
		stdio.Stdin = os.Stdin
	}
	if stdio.Stdout == nil {
		stdio.Stdout = os.Stdout
	}
	if stdio.Stderr == nil {
		stdio.Stderr = os.Stderr
	}
	fmt.Fprintf(stdio.Stdout, "Entering '%s' (%s). Leave the shell to return to karapace tui.\n", envLabel(&env), env.ShortID)
	return u.eng.Enter(ctx, env.EnvID, stdio, nil)
}

func (u *ui) build() {
	u.app = tview.NewApplication()
	if u.opts.Screen != nil {
		u.app.SetScreen(u.opts.Screen)
	}
	u.app.EnableMouse(true)
	// Bracketed paste: pasted text goes to the search or rename field, and is never
	// taken for keys (a pasted "dy" must not destroy anything).
	u.app.EnablePaste(true)
	u.app.SetAfterDrawFunc(func(tcell.Screen) { u.startOnce.Do(func() { close(u.started) }) })

	u.header = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.status = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.input = tview.NewInputField().SetFieldBackgroundColor(tcell.ColorDefault).
		SetLabelStyle(tcell.StyleDefault.Foreground(tcell.ColorYellow).Bold(true))
	u.bottom = tview.NewPages().AddPage("status", u.status, true, true).AddPage("input", u.input, true, false)

	u.table = tview.NewTable().SetSelectable(true, false).SetFixed(1, 0).
		SetSelectedStyle(tcell.StyleDefault.Background(tcell.ColorDarkSlateGray).Foreground(tcell.ColorWhite).Bold(true))
	u.note = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetTextColor(tcell.ColorGray)
	u.listBox = tview.NewFlex().SetDirection(tview.FlexRow).AddItem(u.table, 0, 1, true).AddItem(u.note, 0, 0, false)
	u.listBox.SetBorder(true)
	u.table.SetSelectionChangedFunc(u.selectionChanged)
	u.table.SetMouseCapture(func(action tview.MouseAction, ev *tcell.EventMouse) (tview.MouseAction, *tcell.EventMouse) {
		if action != tview.MouseLeftDoubleClick || ev == nil {
			return action, ev
		}
		x, y := ev.Position()
		if !u.table.InRect(x, y) {
			return action, ev
		}
		if r, _ := u.table.CellAt(x, y); r >= 1 && r-1 < len(u.m.visible) {
			u.table.Select(r, 0)
			u.openDetail()
			return action, nil
		}
		return action, ev
	})

	u.detailView = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetScrollable(true)
	u.detailView.SetBorder(true)
	u.helpView = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetScrollable(true).SetText(helpText())
	u.helpView.SetBorder(true).SetTitle(" Help ")
	u.picker = tview.NewTable().SetSelectable(true, false).SetFixed(1, 0).
		SetSelectedStyle(tcell.StyleDefault.Background(tcell.ColorDarkSlateGray).Foreground(tcell.ColorWhite).Bold(true))
	u.picker.SetBorder(true)

	u.pages = tview.NewPages().
		AddPage(viewList, u.listBox, true, true).
		AddPage(viewDetail, u.detailView, true, false).
		AddPage(viewHelp, u.helpView, true, false).
		AddPage(viewSnapshots, u.picker, true, false)

	root := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.header, 1, 0, false).
		AddItem(u.pages, 0, 1, true).
		AddItem(u.bottom, 1, 0, false)
	u.app.SetRoot(root, true).SetFocus(u.table)
	u.app.SetInputCapture(u.capture)
	u.renderHeader()
	u.renderList()
	u.renderStatus()
}

func (u *ui) run() error {
	defer u.cancel()
	stamp := u.in.stamp()
	go u.forward()
	go func() {
		select {
		case <-u.ctx.Done():
			u.stop()
		case <-u.quit:
		}
	}()
	u.wg.Add(1)
	go u.watch(stamp)
	u.reload(false)
	err := u.app.Run()
	close(u.runDone)
	u.stop()
	u.cancel()
	u.wg.Wait()
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTerminal, err)
	}
	return nil
}

// stop ends the UI: the forwarder stops the application once no update of ours is
// pending, so no goroutine is ever left waiting on a stopped event loop.
func (u *ui) stop() { u.stopOnce.Do(func() { close(u.quit) }) }

func (u *ui) forward() {
	// Until the event loop runs, a queued update could wait forever (the terminal may
	// fail to open), so nothing is handed over before the first draw.
	select {
	case <-u.started:
	case <-u.runDone:
		return // the terminal never opened; Stop would finalize a screen never initialized
	}
	for {
		select {
		case f := <-u.updates:
			u.app.QueueUpdateDraw(f)
		case <-u.quit:
			u.app.Stop()
			return
		}
	}
}

// post runs f on the UI goroutine and redraws. It must not be called from the UI
// goroutine. It reports false when the UI is shutting down and f will not run.
func (u *ui) post(f func()) bool {
	select {
	case u.updates <- f:
		return true
	case <-u.quit:
		return false
	}
}

// spawn runs f off the UI goroutine; run waits for it before returning.
func (u *ui) spawn(f func(ctx context.Context)) {
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		f(u.ctx)
	}()
}

// watch polls the store and reloads when it changed.
func (u *ui) watch(last string) {
	defer u.wg.Done()
	if u.opts.PollInterval < 0 {
		return
	}
	t := time.NewTicker(u.opts.PollInterval)
	defer t.Stop()
	for {
		select {
		case <-u.quit:
			return
		case <-t.C:
			if s := u.in.stamp(); s != last {
				last = s
				u.post(func() { u.reload(false) })
			}
		}
	}
}

// reload lists the environments again (and the detail being shown), off the UI
// goroutine. remeasure forgets the cached sizes.
func (u *ui) reload(remeasure bool) {
	u.seq++
	seq := u.seq
	var detailID schema.EnvID
	if u.view == viewDetail || u.view == viewSnapshots {
		detailID = u.detailID
	}
	u.spawn(func(ctx context.Context) {
		envs, err := u.eng.List(ctx)
		if err != nil {
			if ctx.Err() == nil {
				u.post(func() { u.setStatus("refresh failed: "+err.Error(), true) })
			}
			return
		}
		if remeasure {
			u.in.forgetSizes()
		}
		rows := make([]row, len(envs))
		missing := false
		for i := range envs {
			rows[i] = row{env: envs[i], backend: u.in.backend(ctx, &envs[i]), size: u.in.cachedSize(&envs[i])}
			missing = missing || rows[i].size < 0
		}
		first := append([]row(nil), rows...)
		if !u.post(func() { u.applyRows(seq, first) }) {
			return
		}
		if !detailID.IsZero() {
			d := loadDetail(ctx, u.eng, u.in, detailID)
			if !u.post(func() { u.applyDetail(detailID, d) }) {
				return
			}
		}
		if missing {
			for i := range rows {
				if rows[i].size < 0 {
					rows[i].size = u.in.size(ctx, &rows[i].env)
				}
			}
			u.post(func() { u.applyRows(seq, rows) })
		}
	})
}

func (u *ui) applyRows(seq uint64, rows []row) {
	if seq != u.seq {
		return
	}
	u.loaded = true
	u.m.setRows(rows)
	u.renderList()
	u.renderHeader()
}

// --- selection ---

func (u *ui) selectionChanged(r, _ int) {
	if r < 1 {
		if len(u.m.visible) > 0 {
			u.table.Select(1, 0)
		}
		return
	}
	if r-1 < len(u.m.visible) {
		u.selPos = r - 1
		u.selected = u.m.rows[u.m.visible[r-1]].env.EnvID.String()
	}
}

// current is the environment the keys act on: the one in the detail view, or the
// selected row of the list.
func (u *ui) current() *core.Env {
	if u.view == viewDetail || u.view == viewSnapshots {
		for i := range u.m.rows {
			if u.m.rows[i].env.EnvID == u.detailID {
				return &u.m.rows[i].env
			}
		}
		if u.det != nil && u.det.err == nil {
			return &u.det.env
		}
		return nil
	}
	if p := u.m.find(u.selected); p >= 0 {
		return &u.m.rows[u.m.visible[p]].env
	}
	return nil
}

// --- views ---

func (u *ui) showView(name string) {
	u.view = name
	u.pages.SwitchToPage(name)
	switch name {
	case viewList:
		u.app.SetFocus(u.table)
	case viewDetail:
		u.app.SetFocus(u.detailView)
	case viewHelp:
		u.app.SetFocus(u.helpView)
	case viewSnapshots:
		u.app.SetFocus(u.picker)
	}
	u.renderStatus()
}

func (u *ui) openDetail() {
	e := u.current()
	if e == nil {
		return
	}
	u.detailID = e.EnvID
	u.det = nil
	u.detailView.SetTitle(" " + tview.Escape(envLabel(e)) + " ")
	u.detailView.SetText("  loading…").ScrollToBeginning()
	u.showView(viewDetail)
	id := e.EnvID
	u.spawn(func(ctx context.Context) {
		d := loadDetail(ctx, u.eng, u.in, id)
		u.post(func() { u.applyDetail(id, d) })
	})
}

func (u *ui) applyDetail(id schema.EnvID, d *detail) {
	if id != u.detailID {
		return
	}
	u.det = d
	title := " Detail "
	if d.err == nil {
		title = " " + tview.Escape(envLabel(&d.env)) + " "
	}
	u.detailView.SetTitle(title)
	u.detailView.SetText(renderDetail(d))
}

// --- status ---

// setStatus shows msg until the next action replaces it.
func (u *ui) setStatus(msg string, isErr bool) {
	u.statusMsg, u.statusErr = msg, isErr
	u.renderStatus()
}

// --- keys ---

func (u *ui) capture(ev *tcell.EventKey) *tcell.EventKey {
	if ev.Key() == tcell.KeyCtrlC {
		u.stop()
		return nil
	}
	if u.mode != modeNormal {
		return ev
	}
	switch u.view {
	case viewHelp:
		if ev.Key() == tcell.KeyEscape || (ev.Key() == tcell.KeyRune && (ev.Rune() == 'q' || ev.Rune() == '?')) {
			u.showView(viewList)
			return nil
		}
		return ev
	case viewSnapshots:
		switch {
		case ev.Key() == tcell.KeyEscape || (ev.Key() == tcell.KeyRune && ev.Rune() == 'q'):
			u.showView(u.pickerRet)
			return nil
		case ev.Key() == tcell.KeyEnter:
			u.pickSnapshot()
			return nil
		}
		return ev
	case viewDetail:
		switch {
		case ev.Key() == tcell.KeyEscape || (ev.Key() == tcell.KeyRune && ev.Rune() == 'q'):
			u.showView(viewList)
			u.renderList()
			return nil
		case ev.Key() == tcell.KeyRune && ev.Rune() == 'r':
			u.reload(true)
			return nil
		case ev.Key() == tcell.KeyRune && ev.Rune() == '?':
			u.showView(viewHelp)
			return nil
		case ev.Key() == tcell.KeyRune && u.action(ev.Rune()):
			return nil
		}
		return ev
	}
	// The list.
	switch ev.Key() {
	case tcell.KeyEnter:
		u.openDetail()
		return nil
	case tcell.KeyEscape:
		if u.m.filter != "" {
			u.m.setFilter("")
			u.renderList()
			u.setStatus("filter cleared", false)
		}
		return nil
	case tcell.KeyRune:
	default:
		if len(u.m.visible) == 0 {
			return nil // the table would search forever for a row to select
		}
		return ev
	}
	switch ev.Rune() {
	case 'q':
		u.stop()
	case '?':
		u.showView(viewHelp)
	case '/':
		u.search()
	case 's':
		u.m.cycleSort()
		u.renderList()
		u.setStatus("sort: "+u.m.sortLabel(), false)
	case 'S':
		u.m.toggleDirection()
		u.renderList()
		u.setStatus("sort: "+u.m.sortLabel(), false)
	case 'r':
		u.reload(true)
		u.setStatus("refreshed", false)
	default:
		if !u.action(ev.Rune()) && len(u.m.visible) > 0 {
			return ev // j, k, g, G: the table moves
		}
	}
	return nil
}

// action runs the action bound to key on the current environment; false when key is
// not an action key.
func (u *ui) action(key rune) bool {
	switch key {
	case 'e', 'f', 'a', 'd', 'n', 'c', 'R':
	default:
		return false
	}
	e := u.current()
	if e == nil {
		u.setStatus("no environment selected", true)
		return true
	}
	env := *e
	id, label := env.EnvID, envLabel(&env)
	switch key {
	case 'e':
		u.enter(env)
	case 'f':
		u.confirm(fmt.Sprintf("Freeze '%s'?\nA frozen environment can no longer be entered.", label), "Freeze", func() {
			u.act("freeze", label, func(ctx context.Context) (string, error) {
				return fmt.Sprintf("frozen '%s'", label), u.eng.Freeze(ctx, id)
			})
		})
	case 'a':
		u.confirm(fmt.Sprintf("Archive '%s'?\nAn archived environment is kept but can no longer be entered.", label), "Archive", func() {
			u.act("archive", label, func(ctx context.Context) (string, error) {
				return fmt.Sprintf("archived '%s'", label), u.eng.Archive(ctx, id)
			})
		})
	case 'd':
		u.confirm(fmt.Sprintf("Destroy '%s' (%s)?\nIts writable layer and metadata are deleted.", label, env.ShortID), "Destroy", func() {
			u.act("destroy", label, func(ctx context.Context) (string, error) {
				err := u.eng.Destroy(ctx, id)
				if err == nil {
					u.post(func() {
						if (u.view == viewDetail || u.view == viewSnapshots) && u.detailID == id {
							u.showView(viewList)
						}
					})
				}
				return fmt.Sprintf("destroyed '%s' (%s)", label, env.ShortID), err
			})
		})
	case 'n':
		u.prompt(fmt.Sprintf("rename '%s' to: ", label), "", nil, func(text string, ok bool) {
			switch {
			case !ok:
				u.setStatus("rename cancelled", false)
			case text == "":
				u.setStatus("rename cancelled: no name given", false)
			default:
				u.act("rename", label, func(ctx context.Context) (string, error) {
					return fmt.Sprintf("renamed '%s' to '%s'", label, text), u.eng.Rename(ctx, id, text)
				})
			}
		})
	case 'c':
		u.act("commit", label, func(ctx context.Context) (string, error) {
			key, err := u.eng.Commit(ctx, id)
			return fmt.Sprintf("committed a snapshot of '%s' (restore key %s)", label, key.Short()), err
		})
	case 'R':
		u.openSnapshots(env)
	}
	return true
}

// act runs an engine call off the UI goroutine, one at a time, and shows its outcome
// until the next action.
func (u *ui) act(verb, label string, fn func(ctx context.Context) (string, error)) {
	if u.busy != "" {
		u.setStatus(fmt.Sprintf("%s is still running; try again when it is done", u.busy), true)
		return
	}
	u.busy = verb
	u.setStatus(fmt.Sprintf("%s '%s'…", verb, label), false)
	u.spawn(func(ctx context.Context) {
		msg, err := fn(ctx)
		u.post(func() {
			u.busy = ""
			if err != nil {
				u.setStatus(fmt.Sprintf("%s '%s' failed: %v", verb, label, err), true)
			} else {
				u.setStatus(msg, false)
			}
			u.reload(false)
		})
	})
}

func (u *ui) enter(env core.Env) {
	label := envLabel(&env)
	if env.State != core.Built && env.State != core.Running {
		u.setStatus(fmt.Sprintf("cannot enter '%s': it is %s (only built or running environments can be entered)", label, env.State), true)
		return
	}
	if u.busy != "" {
		u.setStatus(fmt.Sprintf("%s is still running; try again when it is done", u.busy), true)
		return
	}
	var (
		code int
		err  error
	)
	if !u.app.Suspend(func() { code, err = u.opts.Enter(u.ctx, env) }) {
		u.setStatus("could not hand the terminal over", true)
		return
	}
	if err != nil {
		u.setStatus(fmt.Sprintf("enter '%s' failed: %v", label, err), true)
	} else {
		u.setStatus(fmt.Sprintf("session in '%s' ended (exit status %d)", label, code), false)
	}
	u.reload(true)
}

func (u *ui) search() {
	u.prompt("/", u.m.filter, func(text string) {
		u.m.setFilter(text)
		u.renderList()
	}, func(text string, ok bool) {
		switch {
		case !ok || text == "":
			u.m.setFilter("")
			u.setStatus("filter cleared", false)
		default:
			u.m.setFilter(text)
			u.setStatus(fmt.Sprintf("filter '%s': %d match(es)", text, len(u.m.visible)), false)
		}
		u.renderList()
	})
}

// prompt reads a line in the bottom row. done gets the text and whether it was
// confirmed with Enter (Esc cancels).
func (u *ui) prompt(label, initial string, changed func(string), done func(text string, ok bool)) {
	prev := u.app.GetFocus()
	u.mode = modeInput
	u.input.SetChangedFunc(nil)
	u.input.SetLabel(tview.Escape(label)).SetText(initial)
	u.input.SetChangedFunc(changed)
	u.input.SetDoneFunc(func(k tcell.Key) {
		if k != tcell.KeyEnter && k != tcell.KeyEscape {
			return // Tab and Backtab keep editing
		}
		text := u.input.GetText()
		u.input.SetChangedFunc(nil)
		u.mode = modeNormal
		u.bottom.SwitchToPage("status")
		u.app.SetFocus(prev)
		done(text, k == tcell.KeyEnter)
	})
	u.bottom.SwitchToPage("input")
	u.app.SetFocus(u.input)
}

// confirm asks a yes/no question in a dialog; Cancel has the focus, y confirms, n and
// Esc cancel.
func (u *ui) confirm(question, button string, yes func()) {
	prev := u.app.GetFocus()
	u.mode = modeConfirm
	dlg := tview.NewModal().SetText(question).AddButtons([]string{"Cancel", button})
	closeDlg := func() {
		u.pages.RemovePage(pageConfirm)
		u.mode = modeNormal
		u.app.SetFocus(prev)
	}
	answer := func(ok bool) {
		closeDlg()
		if ok {
			yes()
		} else {
			u.setStatus("cancelled", false)
		}
	}
	dlg.SetDoneFunc(func(i int, _ string) { answer(i == 1) })
	dlg.SetInputCapture(func(ev *tcell.EventKey) *tcell.EventKey {
		if ev.Key() == tcell.KeyRune {
			switch ev.Rune() {
			case 'y', 'Y':
				answer(true)
				return nil
			case 'n', 'N', 'q':
				answer(false)
				return nil
			}
		}
		return ev
	})
	u.pages.AddPage(pageConfirm, dlg, true, true)
	u.app.SetFocus(dlg)
	u.setStatus(fmt.Sprintf("%s? (y/n)", button), false)
}

func (u *ui) openSnapshots(env core.Env) {
	label := envLabel(&env)
	id := env.EnvID
	u.setStatus(fmt.Sprintf("loading the snapshots of '%s'…", label), false)
	u.spawn(func(ctx context.Context) {
		snaps, err := u.eng.Snapshots(ctx, id)
		u.post(func() {
			switch {
			case err != nil:
				u.setStatus(fmt.Sprintf("snapshots of '%s': %v", label, err), true)
			case len(snaps) == 0:
				u.setStatus(fmt.Sprintf("'%s' has no snapshots yet: press c to commit one", label), true)
			default:
				u.showSnapshots(env, snaps)
			}
		})
	})
}

func (u *ui) showSnapshots(env core.Env, snaps []core.Snapshot) {
	if u.view != viewSnapshots {
		u.pickerRet = u.view
	}
	if u.pickerRet == viewHelp {
		u.pickerRet = viewList
	}
	u.detailID = env.EnvID
	u.snaps = snaps
	p := u.picker
	p.Clear()
	p.SetTitle(" Restore '" + tview.Escape(envLabel(&env)) + "' to which snapshot? (Enter picks, Esc goes back) ")
	for c, h := range []string{"SNAPSHOT", "RESTORE KEY", "CONTENT"} {
		p.SetCell(0, c, tview.NewTableCell(h).SetSelectable(false).SetAttributes(tcell.AttrBold).SetTextColor(tcell.ColorYellow))
	}
	for i, s := range snaps {
		size := "?"
		if n, err := u.in.objects.Size(u.ctx, s.TarHash); err == nil {
			size = formatSize(n)
		}
		p.SetCell(i+1, 0, tview.NewTableCell(s.ID.Short()))
		p.SetCell(i+1, 1, tview.NewTableCell(s.Key.String()))
		p.SetCell(i+1, 2, tview.NewTableCell(size).SetAlign(tview.AlignRight))
	}
	p.Select(1, 0)
	u.showView(viewSnapshots)
	u.setStatus(fmt.Sprintf("%d snapshot(s) of '%s'", len(snaps), envLabel(&env)), false)
}

func (u *ui) pickSnapshot() {
	r, _ := u.picker.GetSelection()
	if r < 1 || r-1 >= len(u.snaps) {
		return
	}
	s := u.snaps[r-1]
	e := u.current()
	if e == nil {
		u.setStatus("the environment is gone", true)
		return
	}
	id, label := e.EnvID, envLabel(e)
	u.confirm(fmt.Sprintf("Restore '%s' to snapshot %s?\nIts current writable layer is replaced.", label, s.ID.Short()), "Restore", func() {
		u.showView(u.pickerRet)
		u.act("restore", label, func(ctx context.Context) (string, error) {
			return fmt.Sprintf("restored '%s' to snapshot %s", label, s.ID.Short()), u.eng.Restore(ctx, id, s.Key)
		})
	})
}
