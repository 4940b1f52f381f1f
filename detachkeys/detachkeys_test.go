package detachkeys

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []byte
		err  string
	}{
		{in: "", want: []byte{16, 17}},
		{in: "ctrl-p,ctrl-q", want: []byte{16, 17}},
		{in: "CTRL-A,x", want: []byte{1, 'x'}},
		{in: "ctrl-@,ctrl-[,ctrl-\\,ctrl-_", want: []byte{0, 27, 28, 31}},
		{in: "ctrl-1", err: "Unknown character: '1'"},
		{in: "ab", err: "Unknown character: 'ab'"},
		{in: "a,", err: "Unknown character: ''"},
	}
	for _, tc := range tests {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Parse(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestReader(t *testing.T) {
	t.Parallel()
	keys := []byte{16, 17}
	tests := []struct {
		name     string
		in       string
		out      string
		detached bool
	}{
		{name: "plain", in: "hello", out: "hello"},
		{name: "sequence", in: "ab\x10\x11cd", out: "ab", detached: true},
		{name: "broken sequence released", in: "a\x10b\x11", out: "a\x10b\x11"},
		{name: "breaking byte starts it again", in: "a\x10\x10\x11z", out: "a\x10", detached: true},
		{name: "partial at the end is held", in: "a\x10", out: "a"},
	}
	for _, tc := range tests {
		for _, oneByte := range []bool{false, true} {
			var src io.Reader = bytes.NewReader([]byte(tc.in))
			if oneByte {
				src = iotest.OneByteReader(src)
			}
			r := NewReader(src, keys)
			got, err := io.ReadAll(r)
			if string(got) != tc.out || errors.Is(err, ErrDetached) != tc.detached {
				t.Errorf("%s (one byte %v): %q, %v; want %q detached %v", tc.name, oneByte, got, err, tc.out, tc.detached)
			}
			select {
			case <-r.Detached():
				if !tc.detached {
					t.Errorf("%s: Detached closed", tc.name)
				}
			default:
				if tc.detached {
					t.Errorf("%s: Detached not closed", tc.name)
				}
			}
		}
	}
}
