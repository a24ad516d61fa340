package democam

import (
	"fmt"
	"math"
)

// The PTZ camera's picture: a world of coloured landmarks on a checkered
// ground, seen through a window that pan and tilt move and zoom scales,
// with a readout of the position and the time of day burnt in. Every
// pan/tilt/zoom change visibly moves the picture.

// worldSpan is how far (in world pixels at zoom 0) the view centre moves
// from pan/tilt -1 to +1.
const (
	worldSpanX = 960.0
	worldSpanY = 540.0
	cellSize   = 40.0  // checker cell
	markPitch  = 120.0 // landmark spacing
	markRadius = 26.0
)

type yuv struct{ y, u, v uint8 }

// landmark colours (BT.601 limited range): red, green, blue, yellow,
// magenta, cyan, orange, white.
var markColours = []yuv{
	{81, 90, 240}, {145, 54, 34}, {41, 240, 110}, {210, 16, 146},
	{106, 202, 222}, {170, 166, 16}, {151, 44, 201}, {235, 128, 128},
}

// worldColour is the colour at world point (wx, wy).
func worldColour(wx, wy float64) yuv {
	mx, my := math.Round(wx/markPitch), math.Round(wy/markPitch)
	dx, dy := wx-mx*markPitch, wy-my*markPitch
	if dx*dx+dy*dy <= markRadius*markRadius {
		n := len(markColours)
		i := (int(mx)*3+int(my)*5)%n + n
		return markColours[i%n]
	}
	if math.Abs(dx) < 1 || math.Abs(dy) < 1 { // grid lines through the landmarks
		return yuv{180, 128, 128}
	}
	if (int(math.Floor(wx/cellSize))+int(math.Floor(wy/cellSize)))%2 == 0 {
		return yuv{48, 136, 120}
	}
	return yuv{72, 136, 120}
}

// renderScene draws the view for position p into f (coded size; rows
// below the visible height stay black), with text lines burnt in. A
// smaller picture (the sub stream) shows the same view, scaled down.
func renderScene(e *pcmEncoder, f yuvFrame, p ptzAxes, clock string) {
	yp, cb, cr := e.planes(f)
	w, h := e.w, e.h
	scale := (1 + 3*p[2]) * float64(w) / ptzWidth // zoom 0..1 = 1x..4x
	cx, cy := p[0]*worldSpanX/2, -p[1]*worldSpanY/2
	at := func(x, y float64) yuv {
		return worldColour(cx+(x-float64(w)/2)/scale, cy+(y-float64(h)/2)/scale)
	}
	for y := 0; y < h; y++ {
		row := yp[y*e.codedW():]
		for x := 0; x < w; x++ {
			row[x] = at(float64(x)+0.5, float64(y)+0.5).y
		}
	}
	cw := e.codedW() / 2
	for y := 0; y < h/2; y++ {
		for x := 0; x < w/2; x++ {
			c := at(float64(2*x)+1, float64(2*y)+1)
			cb[y*cw+x], cr[y*cw+x] = c.u, c.v
		}
	}
	drawText(e, f, 4, 4, fmt.Sprintf("P%+.2f T%+.2f Z%.2f", p[0], p[1], p[2]))
	drawText(e, f, w-4-len(clock)*12, h-4-14, clock)
}

// font5x7 holds the glyphs the readout needs; each row's low 5 bits are
// the pixels, left to right from bit 4.
var font5x7 = map[rune][7]uint8{
	'0': {0x0e, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0e},
	'1': {0x04, 0x0c, 0x04, 0x04, 0x04, 0x04, 0x0e},
	'2': {0x0e, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1f},
	'3': {0x1f, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0e},
	'4': {0x02, 0x06, 0x0a, 0x12, 0x1f, 0x02, 0x02},
	'5': {0x1f, 0x10, 0x1e, 0x01, 0x01, 0x11, 0x0e},
	'6': {0x06, 0x08, 0x10, 0x1e, 0x11, 0x11, 0x0e},
	'7': {0x1f, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08},
	'8': {0x0e, 0x11, 0x11, 0x0e, 0x11, 0x11, 0x0e},
	'9': {0x0e, 0x11, 0x11, 0x0f, 0x01, 0x02, 0x0c},
	'+': {0x00, 0x04, 0x04, 0x1f, 0x04, 0x04, 0x00},
	'-': {0x00, 0x00, 0x00, 0x1f, 0x00, 0x00, 0x00},
	'.': {0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x0c},
	':': {0x00, 0x0c, 0x0c, 0x00, 0x0c, 0x0c, 0x00},
	'P': {0x1e, 0x11, 0x11, 0x1e, 0x10, 0x10, 0x10},
	'T': {0x1f, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04},
	'Z': {0x1f, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1f},
	' ': {},
}

// drawText draws s at (x, y) in white on a black box, glyphs doubled
// (10x14, 12 px advance). Unknown characters are blank.
func drawText(e *pcmEncoder, f yuvFrame, x0, y0 int, s string) {
	yp, cb, cr := e.planes(f)
	w := e.codedW()
	n := len([]rune(s))
	for y := y0 - 2; y < y0+16; y++ {
		for x := x0 - 2; x < x0+n*12; x++ {
			if x < 0 || y < 0 || x >= e.w || y >= e.h {
				continue
			}
			yp[y*w+x] = 16
			cb[(y/2)*w/2+x/2], cr[(y/2)*w/2+x/2] = 128, 128
		}
	}
	for i, r := range []rune(s) {
		g := font5x7[r]
		for gy := 0; gy < 7; gy++ {
			for gx := 0; gx < 5; gx++ {
				if g[gy]>>(4-gx)&1 == 0 {
					continue
				}
				for d := 0; d < 4; d++ {
					x, y := x0+i*12+gx*2+d%2, y0+gy*2+d/2
					if x < e.w && y < e.h {
						yp[y*w+x] = 235
					}
				}
			}
		}
	}
}
