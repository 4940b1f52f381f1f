package main

import (
	"image"
	"image/color"
)

// glyphs is a 5×7 bitmap font for printable ASCII (' ' to '~'): seven rows
// a glyph, two hex digits a row, the leftmost pixel in bit 4. Drawn here so
// that the chart needs no font package. The letters with a descender are
// drawn descenders as x-height plus two rows, and set two rows lower.
var glyphs = [...]string{
	"00000000000000", "04040404040004", "0a0a0a00000000", "0a0a1f0a1f0a0a", "040f140e051e04", "18190204081303",
	"0c12140815120d", "04040800000000", "02040808080402", "08040202020408", "0004150e150400", "0004041f040400",
	"000000000c0408", "0000001f000000", "00000000000c0c", "00010204081000", "0e11131519110e", "040c040404040e",
	"0e11010204081f", "1f02040201110e", "02060a121f0202", "1f101e0101110e", "0608101e11110e", "1f010204080808",
	"0e11110e11110e", "0e11110f01020c", "000c0c000c0c00", "000c0c000c0408", "02040810080402", "00001f001f0000",
	"08040201020408", "0e110102040004", "0e11010d15150e", "0e11111f111111", "1e11111e11111e", "0e11101010110e",
	"1c12111111121c", "1f10101e10101f", "1f10101e101010", "0e11101711110f", "1111111f111111", "0e04040404040e",
	"0702020202120c", "11121418141211", "1010101010101f", "111b1515111111", "11111915131111", "0e11111111110e",
	"1e11111e101010", "0e11111115120d", "1e11111e141211", "0f10100e01011e", "1f040404040404", "1111111111110e",
	"11111111110a04", "1111111515150a", "11110a040a1111", "1111110a040404", "1f01020408101f", "0e08080808080e",
	"00100804020100", "0e02020202020e", "040a1100000000", "0000000000001f", "08040200000000", "00000e010f110f",
	"1010161911111e", "00000e1010110e", "01010d1311110f", "00000e111f100e", "0609081c080808", "0f1111110f010e",
	"10101619111111", "04000c0404040e", "0200060202120c", "10101214181412", "0c04040404040e", "00001a15151111",
	"00001619111111", "00000e1111110e", "1e1111111e1010", "0f1111110f0101", "00001619101010", "00000e100e011e",
	"08081c08080906", "0000111111130d", "00001111110a04", "0000111115150a", "0000110a040a11", "111111110f010e",
	"00001f0204081f", "02040408040402", "04040404040404", "08040402040408", "00000815020000",
}

const (
	glyphW = 5
	glyphH = 7
	// descent is how far a letter with a descender is set below the others.
	descent = 2
)

func descends(r rune) bool { return r == 'g' || r == 'p' || r == 'q' || r == 'y' }

// glyphRows decodes the rows of r; a rune outside the table is drawn as '?'.
func glyphRows(r rune) [glyphH]uint8 {
	if r < ' ' || r > '~' {
		r = '?'
	}
	hex := glyphs[r-' ']
	var rows [glyphH]uint8
	for i := range rows {
		rows[i] = unhex(hex[2*i])<<4 | unhex(hex[2*i+1])
	}
	return rows
}

func unhex(c byte) uint8 {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// textWidth is how wide s is drawn at scale.
func textWidth(s string, scale int) int {
	return len([]rune(s)) * (glyphW + 1) * scale
}

// drawText draws s with its top-left corner at (x, y), each font pixel a
// scale×scale square.
func drawText(img *image.RGBA, x, y int, s string, scale int, c color.RGBA) {
	for _, r := range s {
		rows := glyphRows(r)
		top := y
		if descends(r) {
			top += descent * scale
		}
		for row, bits := range rows {
			for col := range glyphW {
				if bits&(1<<(glyphW-1-col)) != 0 {
					fillRect(img, image.Rect(x+col*scale, top+row*scale, x+(col+1)*scale, top+(row+1)*scale), c)
				}
			}
		}
		x += (glyphW + 1) * scale
	}
}

func fillRect(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}
