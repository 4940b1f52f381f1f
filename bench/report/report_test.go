package main

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"berth/bench"
)

const sampleOutput = `goos: linux
pkg: berth/registry/bench
BenchmarkBlobUpload/berth-2         	      10	 104083007 ns/op	 161.19 MB/s
BenchmarkBlobUpload/berth-2         	      15	  83458752 ns/op	 201.02 MB/s
BenchmarkBlobUpload/cncf-2          	      13	  96260281 ns/op	 174.29 MB/s
BenchmarkManifestGet/berth-2        	   10000	    100000 ns/op
BenchmarkManifestGet/cncf-2         	    1437	    800000 ns/op
BenchmarkHTTPDFirstAnswer-2
run -d of busybox httpd -> first HTTP 200 (9 runs each)
       1	5380000000 ns/op	       180.5 ms-address	       201.0 ms-published
BenchmarkContainerStart-2   	       1	9749527675 ns/op
--- SKIP: BenchmarkNothing
PASS
`

func TestParseGoBench(t *testing.T) {
	t.Parallel()
	gbs, err := parseGoBench(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, gb := range gbs {
		names = append(names, gb.name)
	}
	want := []string{"BenchmarkBlobUpload/berth", "BenchmarkBlobUpload/cncf", "BenchmarkManifestGet/berth",
		"BenchmarkManifestGet/cncf", "BenchmarkHTTPDFirstAnswer", "BenchmarkContainerStart"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("benchmarks %q, want %q", names, want)
	}
	if got := gbs[0].values("MB/s"); !reflect.DeepEqual(got, []float64{161.19, 201.02}) {
		t.Errorf("upload MB/s %v", got)
	}
	if got := gbs[4].values("ms-published"); !reflect.DeepEqual(got, []float64{201}) {
		t.Errorf("a name on its own line, figures later: %v", got)
	}
}

func TestParseMetrics(t *testing.T) {
	t.Parallel()
	for in, n := range map[string]int{"1 ns/op": 1, "1 ns/op 2.5 MB/s": 2, "": 0, "1 ns/op 2": 0, "fast ns/op": 0} {
		if got := parseMetrics(in); len(got) != n {
			t.Errorf("parseMetrics(%q) = %v, want %d metrics", in, got, n)
		}
	}
}

func TestFromGoBench(t *testing.T) {
	t.Parallel()
	gbs, err := parseGoBench(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	results, other := fromGoBench(gbs)
	if len(results) != 4 || len(other) != 2 {
		t.Fatalf("%d results, %d other, want 4 and 2", len(results), len(other))
	}
	if r := results[3]; r.System != "CNCF registry" || r.Unit != "req/s" || r.Runs[0] != 1250 || r.Bench != "BenchmarkManifestGet" {
		t.Errorf("manifest GET of the CNCF registry: %+v", r)
	}
}

func sampleResults() []bench.Result {
	return []bench.Result{
		{Workload: "container start", System: "runc run", Floor: true, Runs: []float64{0.03, 0.04}},
		{Workload: "container start", System: "docker", Runs: []float64{0.4, 0.5, 0.3}},
		{Workload: "container start", System: "podman", Skipped: "podman is not installed"},
		{Workload: "container start", System: "berth", Runs: []float64{0.1, 0.2}, Note: "busybox"},
		{Workload: "pull", System: "berth", Unit: "MB/s", Runs: []float64{100}},
		{Workload: "pull", System: "docker", Unit: "MB/s", Runs: []float64{50}},
		{Workload: "storage: x", System: "berth vfs", Runs: []float64{2}, Note: "ext4"},
		{Workload: "storage: x", System: "berth btrfs", Runs: []float64{1}, Note: "btrfs"},
		{Workload: "pull", System: "podman", Unit: "MB/s", Runs: []float64{50}, Note: "same"},
		{Workload: "pull", System: "berth", Unit: "MB/s", Runs: []float64{100}, Note: "same"},
		{Workload: "container start", System: "docker", Runs: []float64{0.6}}, // a rerun replaces
	}
}

func TestGroupAndRatio(t *testing.T) {
	t.Parallel()
	ws := group(sampleResults())
	if len(ws) != 3 || ws[0].name != "container start" || ws[1].name != "pull" || ws[2].name != "storage: x" {
		t.Fatalf("workloads %+v", ws)
	}
	var order []string
	for _, r := range ws[0].results {
		order = append(order, r.System)
	}
	if want := []string{"berth", "docker", "runc run", "podman"}; !reflect.DeepEqual(order, want) {
		t.Errorf("order %q, want %q", order, want)
	}
	for _, tc := range []struct {
		w       *workload
		i       int
		want    float64
		present bool
	}{
		{ws[0], 1, 0.15 / 0.6, true},   // times: berth's over docker's
		{ws[0], 2, 0.15 / 0.035, true}, // over the floor
		{ws[0], 3, 0, false},           // skipped
		{ws[1], 1, 0.5, true},          // rates: docker's over berth's
		{ws[2], 1, 2, true},            // no "berth": the first berth-named system
	} {
		got, ok := ratio(tc.w.ref(), tc.w.results[tc.i])
		if ok != tc.present || (ok && (got < tc.want*0.999 || got > tc.want*1.001)) {
			t.Errorf("%s/%s: ratio %v %v, want %v %v", tc.w.name, tc.w.results[tc.i].System, got, ok, tc.want, tc.present)
		}
	}
}

func TestMarkdown(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	other := []*goBench{{name: "BenchmarkHTTPD", lines: [][]metric{{{1e9, "ns/op"}, {180.5, "ms-address"}}}}}
	if err := writeMarkdown(&b, meta{date: "today", elapsed: "1m", chart: "benchmarks.png", machine: []string{"CPU: x"}},
		group(sampleResults()), other); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	for _, want := range []string{
		"| container start | **berth** | 0.150 s | 0.100 – 0.200 | 2 |  |",
		"|  | docker | 0.600 s | 0.600 – 0.600 | 1 | 0.25 |",
		"|  | runc run *(floor)* | 0.035 s |",
		"|  | podman | skipped: podman is not installed |",
		"|  | docker | 50.00 MB/s | 50.00 – 50.00 | 1 | 0.50 |",
		"![medians and ranges, per workload](benchmarks.png)",
		"- **container start**: busybox",
		"| BenchmarkHTTPD | ms-address | 180.5 | 1 |",
		"- CPU: x",
		"- **storage: x**, berth vfs: ext4\n- **storage: x**, berth btrfs: btrfs\n",
		"- **pull**, berth, podman: same\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "ns/op") {
		t.Error("report lists ns/op of a 1x run")
	}
}

func TestChart(t *testing.T) {
	t.Parallel()
	ws := group(sampleResults())
	if ws[0].results[0].System != "berth" {
		t.Fatalf("first row %+v", ws[0].results[0])
	}
	var b bytes.Buffer
	if err := writeChart(&b, ws); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := img.Bounds().Dy(), chartHeight(ws); got != want || img.Bounds().Dx() != chartW {
		t.Errorf("chart %v, want %dx%d", img.Bounds(), chartW, want)
	}
	// berth's start bar: blue at the start of the bar area of its row.
	y := margin + headerH + titleH + rowH/2
	if r, g, bl, _ := img.At(barX+2, y).RGBA(); uint8(r>>8) != berthBlue.R || uint8(g>>8) != berthBlue.G || uint8(bl>>8) != berthBlue.B {
		t.Errorf("pixel at berth's bar is %v %v %v", r>>8, g>>8, bl>>8)
	}
}

func TestGlyphs(t *testing.T) {
	t.Parallel()
	if len(glyphs) != '~'-' '+1 {
		t.Fatalf("%d glyphs", len(glyphs))
	}
	seen := map[string]rune{}
	for i, g := range glyphs {
		r := rune(' ' + i)
		if len(g) != 2*glyphH {
			t.Errorf("glyph %q: %d hex digits", r, len(g))
		}
		for _, row := range glyphRows(r) {
			if row >= 1<<glyphW {
				t.Errorf("glyph %q wider than %d", r, glyphW)
			}
		}
		if prev, ok := seen[g]; ok && r != ' ' {
			t.Errorf("glyphs %q and %q are the same", prev, r)
		}
		seen[g] = r
	}
	if glyphRows('\t') != glyphRows('?') {
		t.Error("a rune outside the table is not drawn as '?'")
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	res := filepath.Join(dir, "r.jsonl")
	gob := filepath.Join(dir, "g.txt")
	var lines []byte
	for _, l := range []string{
		`{"workload":"start","system":"berth","runs":[0.1,0.2],"bench":"BenchmarkContainerStart"}`,
		`{"workload":"start","system":"docker","skipped":"no dockerd"}`,
	} {
		lines = append(lines, l+"\n"...)
	}
	if err := os.WriteFile(res, lines, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(gob, []byte(sampleOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	md, pngPath := filepath.Join(dir, "docs", "b.md"), filepath.Join(dir, "docs", "b.png")
	os.Mkdir(filepath.Dir(md), 0o755)
	var stderr bytes.Buffer
	if err := run([]string{"-results", res, "-gobench", gob, "-md", md, "-png", pngPath, "-machine=false", "-elapsed", "2m"}, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	out, err := os.ReadFile(md)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"took 2m", "](b.png)", "| registry: blob upload", "| BenchmarkHTTPDFirstAnswer | ms-published | 201.0 |"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(string(out), "BenchmarkContainerStart |") {
		t.Error("a benchmark that recorded results is listed again among the others")
	}
	if _, err := os.Stat(pngPath); err != nil {
		t.Error(err)
	}
	if err := run([]string{"-md", md}, &stderr); err == nil {
		t.Error("no inputs accepted")
	}
}

func TestWorkloadOrder(t *testing.T) {
	t.Parallel()
	var in []bench.Result
	for _, w := range []string{"registry: blob upload", "something new", "pull: 5 layers", "Container start: run", "build: cold", "another"} {
		in = append(in, bench.Result{Workload: w, System: "berth", Runs: []float64{1}})
	}
	var got []string
	for _, w := range group(in) {
		got = append(got, w.name)
	}
	want := []string{"Container start: run", "pull: 5 layers", "build: cold", "registry: blob upload", "something new", "another"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("order %q, want %q", got, want)
	}
}
