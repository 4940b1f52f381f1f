package task

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestJSONLogFormat(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	long := strings.Repeat("a", maxLogLine+5)
	cases := []struct {
		name   string
		writes []struct{ stream, data string }
		want   string
	}{
		{"line", []struct{ stream, data string }{{"stdout", "hi\n"}},
			`{"log":"hi\n","stream":"stdout","time":"2026-01-02T02:04:05.0000006Z"}` + "\n"},
		{"split-across-writes", []struct{ stream, data string }{{"stderr", "a"}, {"stdout", "x\n"}, {"stderr", "b\nc"}},
			`{"log":"x\n","stream":"stdout","time":"2026-01-02T02:04:05.0000006Z"}` + "\n" +
				`{"log":"ab\n","stream":"stderr","time":"2026-01-02T02:04:05.0000006Z"}` + "\n" +
				`{"log":"c","stream":"stderr","time":"2026-01-02T02:04:05.0000006Z"}` + "\n"},
		{"escaping", []struct{ stream, data string }{{"stdout", "<a & \"b\">\t\x01\n"}},
			`{"log":"\u003ca \u0026 \"b\"\u003e\t\u0001\n","stream":"stdout","time":"2026-01-02T02:04:05.0000006Z"}` + "\n"},
		{"long-line-partial", []struct{ stream, data string }{{"stdout", long}},
			`{"log":"` + long[:maxLogLine] + `","stream":"stdout","time":"2026-01-02T02:04:05.0000006Z"}` + "\n" +
				`{"log":"aaaaa","stream":"stdout","time":"2026-01-02T02:04:05.0000006Z"}` + "\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "c-json.log")
			l, err := openJSONLog(LogConfig{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.writes {
				if err := l.write(w.stream, []byte(w.data), at); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.close(at); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("log:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestJSONLogRotate(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		maxFiles int
		files    []string // files that must exist after 10 entries
		gone     string
	}{
		{"keep-three", 3, []string{"", ".1", ".2"}, ".3"},
		{"truncate-only", 1, []string{""}, ".1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "c-json.log")
			l, err := openJSONLog(LogConfig{Path: path, MaxSize: 100, MaxFiles: tc.maxFiles})
			if err != nil {
				t.Fatal(err)
			}
			for range 10 {
				if err := l.write("stdout", []byte("0123456789012345678901234567890123456789\n"), time.Now()); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.close(time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				fi, err := os.Stat(path + f)
				if err != nil || fi.Size() == 0 || fi.Size() > 200 {
					t.Fatalf("%s: %v, %v", path+f, fi, err)
				}
			}
			if _, err := os.Stat(path + tc.gone); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s kept: %v", tc.gone, err)
			}
		})
	}
}
