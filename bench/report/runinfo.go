package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"berth/errdefs"
)

// timing is how long one benchmark process of the run took
// (scripts/bench.sh writes "name<TAB>seconds<TAB>exit status<TAB>attempt
// <TAB>1-minute load average at its start" lines; a failed benchmark is
// run a second time).
type timing struct {
	name    string
	secs    int
	rc      int
	attempt int
	load    string
}

func readTimings(path string) ([]timing, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []timing
	for i, l := range lines {
		f := strings.Split(l, "\t")
		if len(f) != 5 {
			return nil, fmt.Errorf("timings %s line %d: %q: want name, seconds, exit status, attempt, load: %w", path, i+1, l, errdefs.ErrInvalidArgument)
		}
		secs, err1 := strconv.Atoi(f[1])
		rc, err2 := strconv.Atoi(f[2])
		attempt, err3 := strconv.Atoi(f[3])
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("timings %s line %d: %q: %w", path, i+1, l, errdefs.ErrInvalidArgument)
		}
		out = append(out, timing{name: f[0], secs: secs, rc: rc, attempt: attempt, load: f[4]})
	}
	return out, nil
}

// readPeers is how each peer was set up for the run, one "name: text"
// line each, every line once (each benchmark process writes its own).
func readPeers(path string) ([]string, error) {
	lines, err := readLines(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range lines {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	return out, nil
}

// readLines is the non-blank lines of path; "" is none.
func readLines(path string) ([]string, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("report input: %w", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			out = append(out, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("report input %s: %w", path, err)
	}
	return out, nil
}

func minSec(secs int) string { return fmt.Sprintf("%d min %02d s", secs/60, secs%60) }

// failed is the benchmarks whose last attempt failed, in run order.
func failed(ts []timing) []string {
	last := map[string]int{}
	var order []string
	for _, t := range ts {
		if _, ok := last[t.name]; !ok {
			order = append(order, t.name)
		}
		last[t.name] = t.rc
	}
	var out []string
	for _, name := range order {
		if last[name] != 0 {
			out = append(out, name)
		}
	}
	return out
}

// writeTimings lists each benchmark's time and whether it completed, so a
// reader sees where the run's half hour goes and what is missing.
func writeTimings(b *strings.Builder, ts []timing) {
	if len(ts) == 0 {
		return
	}
	b.WriteString("\n## Time per benchmark\n\nEach benchmark ran in a process of its own (setup, fixtures and every system's runs included); " +
		"one that failed ran once more, and only its last attempt's figures are reported.\n\n" +
		"| benchmark | attempt | load at start | time | outcome |\n|---|---:|---:|---:|---|\n")
	total := 0
	for i, t := range ts {
		outcome := "completed"
		switch {
		case t.rc != 0 && i+1 < len(ts) && ts[i+1].name == t.name:
			outcome = fmt.Sprintf("failed (exit status %d), so run again", t.rc)
		case t.rc != 0:
			outcome = fmt.Sprintf("**failed** (exit status %d): its figures are missing or partial", t.rc)
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s |\n", mdEscape(t.name), t.attempt, mdEscape(t.load), minSec(t.secs), outcome)
		total += t.secs
	}
	fmt.Fprintf(b, "| all benchmarks | | | %s | |\n", minSec(total))
}
