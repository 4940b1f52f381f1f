package main

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"berth/bench"
)

// metric is one value a Go benchmark line reported, e.g. 1358.9 MB/s.
type metric struct {
	value float64
	unit  string
}

// goBench is every line of one benchmark (several with -count).
type goBench struct {
	name  string // without the -GOMAXPROCS suffix
	lines [][]metric
}

var (
	// BenchmarkBlobUpload/berth-2   	     100	  12345678 ns/op	 1358.90 MB/s
	benchLine = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?\s+(\d+)\s+(\S.*)$`)
	// A benchmark that prints has its name on a line of its own and its
	// figures later on a line starting with the iteration count.
	benchName = regexp.MustCompile(`^(Benchmark\S*?)(?:-\d+)?\s*$`)
	benchRest = regexp.MustCompile(`^\s+(\d+)\s+(\S.*\bns/op\b.*)$`)
)

// parseGoBench collects the benchmark lines of `go test -bench` output, in
// the order first seen; other lines are ignored.
func parseGoBench(r io.Reader) ([]*goBench, error) {
	var order []*goBench
	byName := map[string]*goBench{}
	add := func(name, rest string) {
		ms := parseMetrics(rest)
		if len(ms) == 0 {
			return
		}
		gb := byName[name]
		if gb == nil {
			gb = &goBench{name: name}
			byName[name] = gb
			order = append(order, gb)
		}
		gb.lines = append(gb.lines, ms)
	}
	pending := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := benchLine.FindStringSubmatch(line); m != nil {
			add(m[1], m[3])
			pending = ""
		} else if m := benchName.FindStringSubmatch(line); m != nil {
			pending = m[1]
		} else if m := benchRest.FindStringSubmatch(line); m != nil && pending != "" {
			add(pending, m[2])
			pending = ""
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("benchmark output: %w", err)
	}
	return order, nil
}

// parseMetrics reads "value unit" pairs; it returns nil unless the text is
// made of them only.
func parseMetrics(s string) []metric {
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%2 != 0 {
		return nil
	}
	var ms []metric
	for i := 0; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil
		}
		ms = append(ms, metric{v, f[i+1]})
	}
	return ms
}

// values is the benchmark's figures in unit, one per line that has it.
func (gb *goBench) values(unit string) []float64 {
	var out []float64
	for _, l := range gb.lines {
		for _, m := range l {
			if m.unit == unit {
				out = append(out, m.value)
			}
		}
	}
	return out
}

// known maps the registry benchmarks of registry/bench (a package that
// may not import the engine's bench package) to workloads; the last
// element of the benchmark's name is the system.
var known = []struct {
	bench, workload, from, unit string
	convert                     func(float64) float64
}{
	{"BenchmarkBlobUpload", "registry: blob upload, 16 MiB (POST + PUT)", "MB/s", "MB/s", nil},
	{"BenchmarkBlobDownload", "registry: blob download, 16 MiB GET", "MB/s", "MB/s", nil},
	{"BenchmarkManifestGet", "registry: manifest GET, GOMAXPROCS clients", "ns/op", "req/s", func(ns float64) float64 { return 1e9 / ns }},
}

var registrySystems = map[string]string{"berth": "berth registry", "cncf": "CNCF registry"}

// fromGoBench turns the known benchmarks into results; the others are
// returned as they are.
func fromGoBench(gbs []*goBench) (results []bench.Result, other []*goBench) {
	for _, gb := range gbs {
		top, sub, _ := strings.Cut(gb.name, "/")
		matched := false
		for _, k := range known {
			if top != k.bench || sub == "" {
				continue
			}
			vals := gb.values(k.from)
			if len(vals) == 0 {
				continue
			}
			if k.convert != nil {
				for i, v := range vals {
					vals[i] = k.convert(v)
				}
			}
			system := registrySystems[sub]
			if system == "" {
				system = sub
			}
			results = append(results, bench.Result{Workload: k.workload, System: system, Unit: k.unit, Runs: vals, Bench: top})
			matched = true
		}
		if !matched {
			other = append(other, gb)
		}
	}
	return results, other
}
