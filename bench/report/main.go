// Command report turns one benchmark run into docs/benchmarks.md and its
// chart: the results the benchmarks of bench/ recorded (JSON lines, see
// package berth/bench) and the `go test -bench` output of the run, whose
// registry benchmarks (registry/bench) become results too and whose other
// custom metrics are listed as they are.
//
//	go run ./bench/report -results R.jsonl -gobench out1.txt,out2.txt \
//	    -md docs/benchmarks.md -png docs/benchmarks.png -elapsed 21m
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"berth/bench"
	"berth/errdefs"
)

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

type options struct {
	results, gobench, md, png, elapsed, commit string
	timings, peers, load                       string
	machine                                    bool
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.results, "results", "", "results file (JSON lines)")
	fs.StringVar(&o.gobench, "gobench", "", "comma-separated `go test -bench` outputs")
	fs.StringVar(&o.md, "md", "docs/benchmarks.md", "markdown report to write")
	fs.StringVar(&o.png, "png", "docs/benchmarks.png", "chart to write (empty: none)")
	fs.StringVar(&o.elapsed, "elapsed", "", "how long the run took, as the report states it")
	fs.StringVar(&o.commit, "commit", "", "berth's commit, as the report names it (default: git rev-parse)")
	fs.BoolVar(&o.machine, "machine", true, "describe this machine and the peers' versions")
	fs.StringVar(&o.timings, "timings", "", "each benchmark's time: name<TAB>seconds<TAB>exit status lines")
	fs.StringVar(&o.peers, "peers", "", "how each peer was set up: \"name: text\" lines")
	fs.StringVar(&o.load, "load", "", "the machine's load averages during the run, as the report states them")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("flags: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if o.results == "" && o.gobench == "" {
		return fmt.Errorf("nothing to report: give -results and/or -gobench: %w", errdefs.ErrInvalidArgument)
	}
	ws, other, err := load(o)
	if err != nil {
		return err
	}
	if len(ws) == 0 {
		return fmt.Errorf("no results in %s %s: %w", o.results, o.gobench, errdefs.ErrInvalidArgument)
	}
	m := meta{date: time.Now().UTC().Format("2006-01-02 15:04 MST"), elapsed: "duration not given"}
	if o.elapsed != "" {
		m.elapsed = "the whole `make bench` took " + o.elapsed
	}
	if o.machine {
		m.machine = describeMachine(context.Background(), o.commit)
	}
	if o.load != "" {
		m.machine = append(m.machine, "load averages (1, 5, 15 min): "+o.load)
	}
	if m.peers, err = readPeers(o.peers); err != nil {
		return err
	}
	if m.timings, err = readTimings(o.timings); err != nil {
		return err
	}
	if o.png != "" {
		rel, err := filepath.Rel(filepath.Dir(o.md), o.png)
		if err != nil {
			return fmt.Errorf("chart path %s: %w", o.png, err)
		}
		m.chart = filepath.ToSlash(rel)
		if err := writeFile(o.png, func(w io.Writer) error { return writeChart(w, ws) }); err != nil {
			return err
		}
	}
	return writeFile(o.md, func(w io.Writer) error { return writeMarkdown(w, m, ws, other) })
}

// load reads the results and the benchmark outputs and groups them.
func load(o options) ([]*workload, []*goBench, error) {
	var results []bench.Result
	if o.results != "" {
		f, err := os.Open(o.results)
		if err != nil {
			return nil, nil, fmt.Errorf("results: %w", err)
		}
		results, err = bench.ReadResults(f)
		f.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", o.results, err)
		}
	}
	covered := map[string]bool{}
	for _, r := range results {
		covered[r.Bench] = true
	}
	var other []*goBench
	for _, path := range strings.Split(o.gobench, ",") {
		if path == "" {
			continue
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, fmt.Errorf("benchmark output: %w", err)
		}
		gbs, err := parseGoBench(bytes.NewReader(raw))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		more, rest := fromGoBench(gbs)
		results = append(results, more...)
		for _, gb := range rest {
			if top, _, _ := strings.Cut(gb.name, "/"); !covered[top] {
				other = append(other, gb)
			}
		}
	}
	return group(results), other, nil
}

// writeFile writes through a temp file and renames, so that a failed run
// leaves the previous report whole.
func writeFile(path string, fill func(io.Writer) error) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".report-*")
	if err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	if err := fill(tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("report %s: %w", path, err)
	}
	return nil
}
