package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/jsonstream"
	"golang.org/x/term"
)

// progressLine is one JSON-message stream entry with the legacy fields
// older daemons send: a preformatted "progress" string and an "error"
// string beside errorDetail.
type progressLine struct {
	jsonstream.Message
	ProgressMessage string `json:"progress,omitempty"`
	ErrorMessage    string `json:"error,omitempty"`
}

// progressDisplay draws a pull or push stream as the docker CLI does. On a
// terminal every layer keeps one line, rewritten in place with its status
// and progress bar; elsewhere each status is one line and progress updates
// are left out. Lines without an ID end the in-place block (pull -a moves
// on to the next tag).
type progressDisplay struct {
	out      io.Writer
	terminal bool
	width    int // terminal columns; bars need more than 110
	aux      func(json.RawMessage)
	now      func() time.Time
}

// newProgressDisplay looks at out to decide how to draw.
func newProgressDisplay(out io.Writer) *progressDisplay {
	d := &progressDisplay{out: out, now: time.Now}
	if f, ok := out.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		d.terminal = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil {
			d.width = w
		}
	}
	return d
}

// run reads the stream to its end and returns the first error it carries.
func (d *progressDisplay) run(r io.Reader) error {
	dec := json.NewDecoder(r)
	ids := map[string]int{}
	for {
		var m progressLine
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return nil
		} else if err != nil {
			return fmt.Errorf("read daemon stream: %w", err)
		}
		switch {
		case m.Error != nil:
			return errors.New(m.Error.Message)
		case m.ErrorMessage != "":
			return errors.New(m.ErrorMessage)
		case m.Aux != nil:
			if d.aux != nil {
				d.aux(*m.Aux)
			}
			continue
		}
		up := 0
		if m.ID != "" && (m.Progress != nil || m.ProgressMessage != "") {
			line, ok := ids[m.ID]
			if !ok {
				line = len(ids)
				ids[m.ID] = line
				if d.terminal {
					fmt.Fprint(d.out, "\n")
				}
			}
			up = len(ids) - line
			if d.terminal && up > 0 {
				fmt.Fprintf(d.out, "\x1b[%dA", up)
			}
		} else {
			ids = map[string]int{}
		}
		d.line(m)
		if m.ID != "" && d.terminal && up > 0 {
			fmt.Fprintf(d.out, "\x1b[%dB", up)
		}
	}
}

// line writes one message; on a terminal a progress message rewrites the
// current line and leaves the cursor on it.
func (d *progressDisplay) line(m progressLine) {
	bar := ""
	if m.Progress != nil {
		bar = d.bar(*m.Progress)
	}
	end := "\n"
	if d.terminal && m.Stream == "" && m.Progress != nil {
		fmt.Fprint(d.out, "\x1b[2K\r")
		end = "\r"
	} else if bar != "" {
		return // no bars off a terminal
	}
	if m.ID != "" {
		fmt.Fprintf(d.out, "%s: ", m.ID)
	}
	switch {
	case m.Progress != nil && d.terminal:
		fmt.Fprintf(d.out, "%s %s%s", m.Status, bar, end)
	case m.ProgressMessage != "":
		fmt.Fprintf(d.out, "%s %s%s", m.Status, m.ProgressMessage, end)
	case m.Stream != "":
		fmt.Fprint(d.out, m.Stream)
	default:
		fmt.Fprintf(d.out, "%s%s", m.Status, end)
	}
}

// bar renders a progress detail as docker does: "[====>   ] 12.3MB/45.6MB
// 3s", the box only on terminals wider than 110 columns.
func (d *progressDisplay) bar(p jsonstream.Progress) string {
	if p.Current <= 0 && p.Total <= 0 {
		return ""
	}
	if p.Total <= 0 {
		if p.Units != "" {
			return fmt.Sprintf("%d %s", p.Current, p.Units)
		}
		return fmt.Sprintf("%8v", units.HumanSize(float64(p.Current)))
	}
	half := min(int(float64(p.Current)/float64(p.Total)*100)/2, 50)
	box := ""
	if d.width > 110 {
		box = "[" + strings.Repeat("=", half) + ">" + strings.Repeat(" ", max(50-half, 0)) + "] "
	}
	numbers := ""
	switch {
	case p.HideCounts:
	case p.Units != "":
		numbers = fmt.Sprintf("%d/%d %s", p.Current, p.Total, p.Units)
		if p.Current > p.Total {
			numbers = fmt.Sprintf("%d %s", p.Current, p.Units)
		}
	default:
		numbers = fmt.Sprintf("%8v/%v", units.HumanSize(float64(p.Current)), units.HumanSize(float64(p.Total)))
		if p.Current > p.Total {
			numbers = fmt.Sprintf("%8v", units.HumanSize(float64(p.Current)))
		}
	}
	left := ""
	if p.Current > 0 && p.Start > 0 && half < 50 {
		elapsed := d.now().Sub(time.Unix(p.Start, 0))
		remaining := time.Duration(float64(elapsed) / float64(p.Current) * float64(p.Total-p.Current))
		if d.width > 50 {
			left = " " + remaining.Round(time.Second).String()
		}
	}
	return box + numbers + left
}
