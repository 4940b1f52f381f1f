// Package detachkeys reads docker's detach-key syntax ("ctrl-p,ctrl-q",
// "a", "ctrl-\\") and spots the sequence in a stream of keystrokes. The
// CLI, the container service and the API's test backend share it, so a
// key sequence means the same everywhere.
package detachkeys

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrDetached is what a Reader returns once the sequence was typed.
var ErrDetached = errors.New("read escape sequence")

// Parse reads a comma-separated sequence of single characters and ctrl-X
// combinations; "" is docker's default, ctrl-p ctrl-q.
func Parse(s string) ([]byte, error) {
	if s == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if c, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-"); ok && len(c) == 1 {
			switch ch := c[0]; {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, fmt.Errorf("Unknown character: '%s'", c)
			}
			continue
		}
		if len(k) != 1 {
			return nil, fmt.Errorf("Unknown character: '%s'", k)
		}
		out = append(out, k[0])
	}
	return out, nil
}

// Reader passes input through until the sequence has been read. A partial
// match is held back and released when the next byte breaks it; the bytes
// before a complete sequence are delivered with ErrDetached.
type Reader struct {
	r        io.Reader
	keys     []byte
	held     []byte
	detached chan struct{}
}

// NewReader watches r for keys (from Parse; never empty).
func NewReader(r io.Reader, keys []byte) *Reader {
	return &Reader{r: r, keys: keys, detached: make(chan struct{})}
}

// Detached is closed when the sequence has been read.
func (d *Reader) Detached() <-chan struct{} { return d.detached }

func (d *Reader) Read(p []byte) (int, error) {
	select {
	case <-d.detached:
		return 0, ErrDetached
	default:
	}
	// Leave room for held-back bytes a broken sequence releases.
	buf := make([]byte, max(1, len(p)-len(d.keys)))
	n, err := d.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b != d.keys[len(d.held)] {
			out = append(out, d.held...)
			d.held = d.held[:0]
			// The breaking byte may begin the sequence anew.
			if b != d.keys[0] {
				out = append(out, b)
				continue
			}
		}
		d.held = append(d.held, b)
		if len(d.held) == len(d.keys) {
			close(d.detached)
			return len(out), ErrDetached
		}
	}
	return len(out), err
}
