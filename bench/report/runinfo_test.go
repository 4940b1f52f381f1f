package main

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"berth/errdefs"
)

func TestReadTimings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in string
		want     []timing
		bad      bool
	}{
		{"two", "BenchmarkA\t75\t0\t1\t0.52\n\nregistry/bench (x)\t3\t1\t2\t1.00\n", []timing{{"BenchmarkA", 75, 0, 1, "0.52"}, {"registry/bench (x)", 3, 1, 2, "1.00"}}, false},
		{"empty", "", nil, false},
		{"fields", "BenchmarkA\t75\t0\t1\n", nil, true},
		{"number", "BenchmarkA\tx\t0\t1\t0.1\n", nil, true},
		{"attempt", "BenchmarkA\t7\t0\tfirst\t0.1\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "timings.txt")
			if err := os.WriteFile(path, []byte(tc.in), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := readTimings(path)
			if tc.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err %v, want invalid argument", err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("%+v %v, want %+v", got, err, tc.want)
			}
		})
	}
	if ts, err := readTimings(""); ts != nil || err != nil {
		t.Errorf("no file: %v %v", ts, err)
	}
	if _, err := readTimings(filepath.Join(t.TempDir(), "absent")); err == nil {
		t.Error("a missing file is no error")
	}
}

func TestReadPeersOnce(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "peers.txt")
	if err := os.WriteFile(path, []byte("docker: x\nberth: y\ndocker: x\n\nberth: y\npodman: z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readPeers(path)
	if want := []string{"docker: x", "berth: y", "podman: z"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q %v, want %q", got, err, want)
	}
}

func TestWriteTimings(t *testing.T) {
	t.Parallel()
	ts := []timing{{"BenchmarkA", 75, 0, 1, "0.10"}, {"BenchmarkB", 600, 2, 1, "1.5"}, {"BenchmarkB", 60, 0, 2, "2"}, {"BenchmarkC", 5, 1, 1, "3"}, {"BenchmarkC", 6, 1, 2, "4"}}
	var b strings.Builder
	writeTimings(&b, ts)
	for _, want := range []string{
		"| BenchmarkA | 1 | 0.10 | 1 min 15 s | completed |",
		"| BenchmarkB | 1 | 1.5 | 10 min 00 s | failed (exit status 2), so run again |",
		"| BenchmarkB | 2 | 2 | 1 min 00 s | completed |",
		"| BenchmarkC | 2 | 4 | 0 min 06 s | **failed** (exit status 1): its figures are missing or partial |",
		"| all benchmarks | | | 12 min 26 s | |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("lacks %q:\n%s", want, b.String())
		}
	}
	if got := failed(ts); !reflect.DeepEqual(got, []string{"BenchmarkC"}) {
		t.Errorf("failed %q, want only BenchmarkC", got)
	}
	b.Reset()
	writeTimings(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no timings, yet %q", b.String())
	}
}
