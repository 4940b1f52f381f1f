package main

import (
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"strings"

	"berth/bench"
)

// The chart: one block per workload, one row per system; the bar is the
// median, the line across it the range, both scaled to the block's largest
// value, so that blocks of seconds and of milliseconds read alike.
const (
	scale     = 2
	charW     = (glyphW + 1) * scale
	chartW    = 1420
	margin    = 20
	labelW    = 42 * charW
	barX      = margin + labelW + 10
	barMaxW   = 520
	valueX    = barX + barMaxW + 14
	titleH    = 32
	rowH      = 24
	barH      = 14
	blockGap  = 10
	headerH   = 40
	maxLabel  = labelW/charW - 1
	maxValue  = (chartW - margin - valueX) / charW
	textShift = (rowH - glyphH*scale) / 2
)

var (
	white     = color.RGBA{255, 255, 255, 255}
	ink       = color.RGBA{34, 34, 34, 255}
	faint     = color.RGBA{140, 140, 140, 255}
	rule      = color.RGBA{225, 225, 225, 255}
	berthBlue = color.RGBA{31, 119, 180, 255}
	floorGrey = color.RGBA{170, 170, 170, 255}
	peerColor = map[string]color.RGBA{
		"docker": {44, 160, 44, 255},
		"podman": {148, 103, 189, 255},
	}
	otherOrange = color.RGBA{255, 127, 14, 255}
)

func chartHeight(ws []*workload) int {
	h := margin + headerH
	for _, w := range ws {
		h += titleH + rowH*len(w.results) + blockGap
	}
	return h + margin
}

// writeChart draws the workloads as a PNG.
func writeChart(out io.Writer, ws []*workload) error {
	img := image.NewRGBA(image.Rect(0, 0, chartW, chartHeight(ws)))
	fillRect(img, img.Bounds(), white)
	drawText(img, margin, margin, "berth benchmarks: bar = median, line = min..max; grey = floor", scale, ink)
	y := margin + headerH
	for _, w := range ws {
		y = drawBlock(img, y, w)
	}
	return png.Encode(out, img)
}

func drawBlock(img *image.RGBA, y int, w *workload) int {
	fillRect(img, image.Rect(margin, y, chartW-margin, y+1), rule)
	title := w.name
	if len(w.results) > 0 {
		u := w.results[0].UnitName()
		if w.results[0].HigherIsBetter() {
			title += " (" + u + ", longer is better)"
		} else {
			title += " (" + u + ", shorter is better)"
		}
	}
	drawText(img, margin, y+10, clip(title, (chartW-2*margin)/charW), scale, ink)
	y += titleH
	top := 0.0
	for _, r := range w.results {
		if _, hi := r.Range(); hi > top {
			top = hi
		}
	}
	for _, r := range w.results {
		drawRow(img, y, r, top, w.ref())
		y += rowH
	}
	return y + blockGap
}

func drawRow(img *image.RGBA, y int, r bench.Result, top float64, ref *bench.Result) {
	label := r.System
	if r.Floor {
		label = "floor: " + label
	}
	drawText(img, margin, y+textShift, clip(label, maxLabel), scale, ink)
	if r.Skipped != "" {
		drawText(img, barX, y+textShift, clip("skipped: "+r.Skipped, (chartW-margin-barX)/charW), scale, faint)
		return
	}
	px := func(v float64) int { return barX + int(v/top*barMaxW+0.5) }
	c := barColor(r, ref)
	mid := y + rowH/2
	fillRect(img, image.Rect(barX, mid-barH/2, max(px(r.Median()), barX+1), mid+barH/2), c)
	lo, hi := r.Range()
	fillRect(img, image.Rect(px(lo), mid-1, px(hi)+1, mid+1), ink)
	fillRect(img, image.Rect(px(lo), mid-5, px(lo)+1, mid+5), ink)
	fillRect(img, image.Rect(px(hi), mid-5, px(hi)+1, mid+5), ink)
	value := bench.FormatValue(r.Median()) + " " + r.UnitName()
	if x, ok := ratio(ref, r); ok && r.System != ref.System {
		value += fmt.Sprintf("  %s/x %.2f", shortName(ref.System), x)
	}
	drawText(img, valueX, y+textShift, clip(value, maxValue), scale, ink)
}

// shortName names the reference in a ratio: "berth", or the storage
// driver when the reference is one of berth's.
func shortName(system string) string {
	rest, ok := strings.CutPrefix(system, "berth ")
	if !ok || rest == "registry" {
		return "berth"
	}
	return rest
}

func barColor(r bench.Result, ref *bench.Result) color.RGBA {
	switch {
	case r.Floor:
		return floorGrey
	case ref != nil && r.System == ref.System, strings.HasPrefix(r.System, "berth"):
		return berthBlue
	}
	for name, c := range peerColor {
		if strings.HasPrefix(r.System, name) {
			return c
		}
	}
	return otherOrange
}

// clip shortens s to n characters, marking the cut.
func clip(s string, n int) string {
	rs := []rune(s)
	if len(rs) <= n || n < 3 {
		return s
	}
	return string(rs[:n-2]) + ".."
}
