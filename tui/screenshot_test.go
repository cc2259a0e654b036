package tui

import (
	"bytes"
	"context"
	"flag"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// go test ./tui -run TestScreenshots -screenshots ../docs/images rewrites the
// screenshots in docs/tui.md. Without the flag they are rendered into a temporary
// directory and checked, so the renderer stays working.
var screenshotDir = flag.String("screenshots", "", "write the documentation screenshots (tui-*.png) into this directory")

const (
	cellW, cellH = 7, 13
)

var (
	defaultFG = color.RGBA{0xd0, 0xd0, 0xd0, 0xff}
	defaultBG = color.RGBA{0x12, 0x12, 0x12, 0xff}
)

func rgb(c tcell.Color, def color.RGBA) color.RGBA {
	if c == tcell.ColorDefault || c == tcell.ColorReset {
		return def
	}
	r, g, b := c.RGB()
	if r < 0 {
		return def
	}
	return color.RGBA{uint8(r), uint8(g), uint8(b), 0xff}
}

// renderPNG draws simulation-screen cells with the 7x13 bitmap font; box-drawing
// characters and arrows, which the font lacks, are drawn as lines.
func renderPNG(cells []tcell.SimCell, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w*cellW, h*cellH))
	face := basicfont.Face7x13
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := cells[y*w+x]
			fg, bg, attr := c.Style.Decompose()
			fgc, bgc := rgb(fg, defaultFG), rgb(bg, defaultBG)
			if attr&tcell.AttrReverse != 0 {
				fgc, bgc = bgc, fgc
			}
			x0, y0 := x*cellW, y*cellH
			draw.Draw(img, image.Rect(x0, y0, x0+cellW, y0+cellH), image.NewUniform(bgc), image.Point{}, draw.Src)
			r := ' '
			if len(c.Runes) > 0 && c.Runes[0] != 0 {
				r = c.Runes[0]
			}
			if drawShape(img, r, x0, y0, fgc) {
				continue
			}
			if _, ok := face.GlyphAdvance(r); !ok {
				r = '?'
			}
			d := &font.Drawer{Dst: img, Src: image.NewUniform(fgc), Face: face, Dot: fixed.P(x0, y0+11)}
			d.DrawString(string(r))
			if attr&tcell.AttrBold != 0 {
				d.Dot = fixed.P(x0+1, y0+11)
				d.DrawString(string(r))
			}
		}
	}
	return img
}

// drawShape draws the box-drawing characters tview uses, and a few symbols.
func drawShape(img *image.RGBA, r rune, x0, y0 int, c color.RGBA) bool {
	cx, cy := x0+cellW/2, y0+cellH/2
	hline := func(xa, xb, y int) {
		for x := xa; x <= xb; x++ {
			img.SetRGBA(x, y, c)
		}
	}
	vline := func(x, ya, yb int) {
		for y := ya; y <= yb; y++ {
			img.SetRGBA(x, y, c)
		}
	}
	left, right, top, bottom := x0, x0+cellW-1, y0, y0+cellH-1
	switch r {
	case '─', '═':
		hline(left, right, cy)
	case '│', '║':
		vline(cx, top, bottom)
	case '┌', '╔':
		hline(cx, right, cy)
		vline(cx, cy, bottom)
	case '┐', '╗':
		hline(left, cx, cy)
		vline(cx, cy, bottom)
	case '└', '╚':
		hline(cx, right, cy)
		vline(cx, top, cy)
	case '┘', '╝':
		hline(left, cx, cy)
		vline(cx, top, cy)
	case '↑':
		vline(cx, y0+2, bottom-2)
		hline(cx-1, cx+1, y0+3)
		hline(cx-2, cx+2, y0+4)
	case '↓':
		vline(cx, y0+2, bottom-2)
		hline(cx-1, cx+1, bottom-3)
		hline(cx-2, cx+2, bottom-4)
	case '…':
		for _, x := range []int{x0 + 1, cx, right - 1} {
			img.SetRGBA(x, bottom-3, c)
		}
	case '▲', '▼', '█', '■':
		for y := cy - 2; y <= cy+2; y++ {
			hline(x0+1, right-1, y)
		}
	default:
		return false
	}
	return true
}

func (h *harness) screenshot(t *testing.T, dir, name string) {
	t.Helper()
	var img *image.RGBA
	h.do(func() {
		cells, w, hh := h.scr.GetContents()
		img = renderPNG(cells, w, hh)
	})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	// The image must hold text: many pixels off the background.
	ink := 0
	for i := 0; i < len(img.Pix); i += 4 {
		if img.Pix[i] != defaultBG.R || img.Pix[i+1] != defaultBG.G || img.Pix[i+2] != defaultBG.B {
			ink++
		}
	}
	if ink < 2000 {
		t.Errorf("%s: only %d pixels of text", name, ink)
	}
	if err := os.WriteFile(filepath.Join(dir, "tui-"+name+".png"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestScreenshots(t *testing.T) {
	dir := *screenshotDir
	if dir == "" {
		dir = t.TempDir()
	}
	// The header shows the store as the default one, under a home of our own.
	home := t.TempDir()
	t.Setenv("HOME", home)
	root := filepath.Join(home, ".local", "share", "karapace")
	e := newEngine(t, root)
	ctx := context.Background()
	web := buildEnv(t, e, "web-frontend", "nodejs", "npm", "git")
	buildEnv(t, e, "rust-dev", "rustc", "cargo", "clang")
	pg := buildEnv(t, e, "postgres-16", "postgresql")
	old := buildEnv(t, e, "legacy-py2", "python2")
	buildEnv(t, e, "", "make", "gcc")
	if err := e.Freeze(ctx, pg); err != nil {
		t.Fatal(err)
	}
	if err := e.Archive(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Commit(ctx, web); err != nil {
		t.Fatal(err)
	}
	h := start(t, root, 110, 32)
	h.waitFor("sizes", func(s string) bool { return !strings.Contains(s, "…") && strings.Contains(s, "legacy-py2") })
	h.keys("j")
	h.screenshot(t, dir, "list")

	h.keys("G")
	h.key(tcell.KeyEnter)
	h.waitText("Drift (writable layer)")
	h.screenshot(t, dir, "detail")

	h.keys("d")
	h.waitText("Destroy? (y/n)")
	h.screenshot(t, dir, "confirm")
	h.keys("n")
	h.waitText("cancelled")

	h.keys("R")
	h.waitText("to which snapshot?")
	h.screenshot(t, dir, "restore")
	h.key(tcell.KeyEscape)
	h.key(tcell.KeyEscape)
	h.waitGone("Drift (writable layer)")

	h.keys("/dev")
	h.waitText("Environments (1/5)")
	h.screenshot(t, dir, "search")
	h.key(tcell.KeyEscape)

	h.keys("?")
	h.waitText("Keybindings")
	h.screenshot(t, dir, "help")
	for _, n := range []string{"list", "detail", "confirm", "restore", "search", "help"} {
		f, err := os.Open(filepath.Join(dir, "tui-"+n+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if b := img.Bounds(); b.Dx() != 110*cellW || b.Dy() != 32*cellH {
			t.Errorf("%s: %v", n, b)
		}
	}
}
