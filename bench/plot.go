package bench

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Plot geometry, shared by the PNG and SVG renderers.
const (
	plotW, plotH                       = 960, 440
	plotLeft, plotRight                = 70, 20
	plotTop, plotBottom                = 36, 44
	plotMinMS                          = 0.01
	plotInnerW                         = plotW - plotLeft - plotRight
	plotInnerH                         = plotH - plotTop - plotBottom
	fontScale                          = 2
	glyphW, glyphH                     = 3, 5
	charW                              = (glyphW + 1) * fontScale
	seriesP50, seriesP99, seriesMax    = 0, 1, 2
	legendX, legendY, legendGap, swatW = plotLeft + 10, 10, 110, 24
)

var seriesColors = [3]color.RGBA{{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0xd6, 0x27, 0x28, 0xff}}
var seriesNames = [3]string{"p50", "p99", "max"}

// plotData is a timeline mapped to the plot's axes: x in seconds, y in log10(ms).
type plotData struct {
	xs       []float64
	ys       [3][]float64
	xMax     float64
	yLo, yHi float64 // decades
	title    string
}

func newPlotData(res *Result) (*plotData, error) {
	tl, what := res.Timeline, "delivery latency"
	if len(tl) == 0 {
		tl, what = res.AckTimeline, "ack latency"
	}
	if len(tl) == 0 {
		return nil, fmt.Errorf("nothing to plot: the run measured no latency")
	}
	d := &plotData{title: fmt.Sprintf("natter bench %s (%s): %s per bucket, by send time", res.Scenario, res.Transport, what)}
	lo, hi := math.Inf(1), math.Inf(-1)
	step := tl[0].StartS
	if len(tl) > 1 {
		step = tl[1].StartS - tl[0].StartS
	}
	for _, b := range tl {
		d.xs = append(d.xs, b.StartS)
		for i, v := range [3]float64{b.P50MS, b.P99MS, b.MaxMS} {
			y := math.Log10(math.Max(v, plotMinMS))
			d.ys[i] = append(d.ys[i], y)
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	d.xMax = tl[len(tl)-1].StartS + math.Max(step, 0.1)
	d.yLo, d.yHi = math.Floor(lo), math.Ceil(hi)
	if d.yHi <= d.yLo {
		d.yHi = d.yLo + 1
	}
	return d, nil
}

func (d *plotData) px(x float64) float64 { return plotLeft + x/d.xMax*plotInnerW }
func (d *plotData) py(y float64) float64 {
	return plotTop + (1-(y-d.yLo)/(d.yHi-d.yLo))*plotInnerH
}

// xTicks returns about ten round tick positions in seconds.
func (d *plotData) xTicks() []float64 {
	raw := d.xMax / 10
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for i := 0; float64(i)*step <= d.xMax+1e-9; i++ {
		ticks = append(ticks, math.Round(float64(i)*step*1e6)/1e6)
	}
	return ticks
}

func decadeLabel(dec float64) string {
	v := math.Pow(10, dec)
	if v >= 1000 {
		return strconv.FormatFloat(v/1000, 'f', -1, 64) + "s"
	}
	return strconv.FormatFloat(v, 'f', -1, 64) + "ms"
}

func secondsLabel(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// WritePlot draws the latency timeline (p50, p99 and max per bucket, log scale) to path, as PNG
// or SVG by its extension.
func (res *Result) WritePlot(path string) error {
	d, err := newPlotData(res)
	if err != nil {
		return err
	}
	var b []byte
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		b, err = d.png()
	case ".svg":
		b = d.svg()
	default:
		return fmt.Errorf("--plot %s: the file must end in .png or .svg", path)
	}
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (d *plotData) svg() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13">%s</text>`+"\n", plotLeft+250, 22, xmlEscape(d.title))
	for dec := d.yLo; dec <= d.yHi; dec++ {
		y := d.py(dec)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>`+"\n", plotLeft, y, plotW-plotRight, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-6, y+4, decadeLabel(dec))
	}
	for _, x := range d.xTicks() {
		px := d.px(x)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>`+"\n", px, plotTop, px, plotH-plotBottom)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", px, plotH-plotBottom+16, secondsLabel(x))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">time since the first send (s)</text>`+"\n", plotLeft+plotInnerW/2, plotH-8)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#444"/>`+"\n", plotLeft, plotTop, plotInnerW, plotInnerH)
	for s := seriesMax; s >= seriesP50; s-- {
		c := seriesColors[s]
		fmt.Fprintf(&b, `<polyline fill="none" stroke="#%02x%02x%02x" stroke-width="1.5" points="`, c.R, c.G, c.B)
		for i, x := range d.xs {
			fmt.Fprintf(&b, "%.1f,%.1f ", d.px(x), d.py(d.ys[s][i]))
		}
		b.WriteString("\"/>\n")
		lx := legendX + s*legendGap
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#%02x%02x%02x" stroke-width="3"/>`, lx, legendY+6, lx+swatW, legendY+6, c.R, c.G, c.B)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+swatW+4, legendY+10, seriesNames[s])
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func (d *plotData) png() ([]byte, error) {
	img := image.NewRGBA(image.Rect(0, 0, plotW, plotH))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	grid := color.RGBA{0xdd, 0xdd, 0xdd, 0xff}
	ink := color.RGBA{0x44, 0x44, 0x44, 0xff}
	for dec := d.yLo; dec <= d.yHi; dec++ {
		y := int(d.py(dec))
		line(img, plotLeft, y, plotW-plotRight, y, grid, 1)
		label := decadeLabel(dec)
		text(img, plotLeft-6-len(label)*charW, y-glyphH*fontScale/2, label, ink)
	}
	for _, x := range d.xTicks() {
		px := int(d.px(x))
		line(img, px, plotTop, px, plotH-plotBottom, grid, 1)
		label := secondsLabel(x)
		text(img, px-len(label)*charW/2, plotH-plotBottom+6, label, ink)
	}
	text(img, plotLeft+plotInnerW/2-3*charW, plotH-16, "time s", ink)
	line(img, plotLeft, plotTop, plotW-plotRight, plotTop, ink, 1)
	line(img, plotLeft, plotH-plotBottom, plotW-plotRight, plotH-plotBottom, ink, 1)
	line(img, plotLeft, plotTop, plotLeft, plotH-plotBottom, ink, 1)
	line(img, plotW-plotRight, plotTop, plotW-plotRight, plotH-plotBottom, ink, 1)
	for s := seriesMax; s >= seriesP50; s-- {
		c := seriesColors[s]
		for i := 1; i < len(d.xs); i++ {
			line(img, int(d.px(d.xs[i-1])), int(d.py(d.ys[s][i-1])), int(d.px(d.xs[i])), int(d.py(d.ys[s][i])), c, 2)
		}
		if len(d.xs) == 1 {
			line(img, int(d.px(d.xs[0]))-2, int(d.py(d.ys[s][0])), int(d.px(d.xs[0]))+2, int(d.py(d.ys[s][0])), c, 3)
		}
		lx := legendX + s*legendGap
		line(img, lx, legendY+5, lx+swatW, legendY+5, c, 3)
		text(img, lx+swatW+6, legendY, seriesNames[s], ink)
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// line draws a segment of the given thickness (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA, thick int) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	e := dx + dy
	for {
		for i := 0; i < thick; i++ {
			for j := 0; j < thick; j++ {
				img.SetRGBA(x0+i-thick/2, y0+j-thick/2, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * e
		if e2 >= dy {
			e += dy
			x0 += sx
		}
		if e2 <= dx {
			e += dx
			y0 += sy
		}
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// glyphs is a 3x5 bitmap font for the few characters the plot labels use: each row is 3 bits.
var glyphs = map[rune][glyphH]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7},
	'4': {5, 5, 7, 1, 1}, '5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1},
	'8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7}, '.': {0, 0, 0, 0, 2},
	'm': {0, 0, 7, 7, 5}, 's': {3, 4, 2, 1, 6}, 'p': {0, 7, 5, 7, 4}, 'a': {0, 3, 5, 5, 3},
	'x': {0, 5, 2, 5, 5}, 't': {2, 7, 2, 2, 3}, 'i': {2, 0, 2, 2, 2}, 'e': {0, 7, 7, 4, 7},
}

// text draws s with the bitmap font, top-left at (x, y); unknown characters are blanks.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g := glyphs[r]
		for row := 0; row < glyphH; row++ {
			for col := 0; col < glyphW; col++ {
				if g[row]&(1<<(glyphW-1-col)) == 0 {
					continue
				}
				for i := 0; i < fontScale; i++ {
					for j := 0; j < fontScale; j++ {
						img.SetRGBA(x+col*fontScale+i, y+row*fontScale+j, c)
					}
				}
			}
		}
		x += charW
	}
}
