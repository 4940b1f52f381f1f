package bench

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"berth/errdefs"
)

func TestResultStatistics(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		runs           []float64
		median, lo, hi float64
	}{
		{nil, 0, 0, 0},
		{[]float64{3}, 3, 3, 3},
		{[]float64{5, 1, 3}, 3, 1, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4},
	} {
		r := Result{Runs: tc.runs}
		lo, hi := r.Range()
		if r.Median() != tc.median || lo != tc.lo || hi != tc.hi {
			t.Errorf("%v: median %v range %v..%v, want %v %v..%v", tc.runs, r.Median(), lo, hi, tc.median, tc.lo, tc.hi)
		}
	}
}

func TestResultUnits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		unit, name string
		rate       bool
	}{{"", "s", false}, {"s", "s", false}, {"MB/s", "MB/s", true}, {"req/s", "req/s", true}, {"B", "B", false}} {
		r := Result{Unit: tc.unit}
		if r.UnitName() != tc.name || r.HigherIsBetter() != tc.rate {
			t.Errorf("unit %q: %q rate %v, want %q %v", tc.unit, r.UnitName(), r.HigherIsBetter(), tc.name, tc.rate)
		}
	}
}

func TestResultValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		r    Result
		ok   bool
	}{
		{"measured", Result{Workload: "w", System: "berth", Runs: []float64{1}}, true},
		{"skipped", Result{Workload: "w", System: "docker", Skipped: "not installed"}, true},
		{"no workload", Result{System: "berth", Runs: []float64{1}}, false},
		{"no system", Result{Workload: "w", Runs: []float64{1}}, false},
		{"empty", Result{Workload: "w", System: "berth"}, false},
		{"both", Result{Workload: "w", System: "berth", Runs: []float64{1}, Skipped: "x"}, false},
	} {
		err := tc.r.Validate()
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, errdefs.ErrInvalidArgument)) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

func TestFormatValue(t *testing.T) {
	t.Parallel()
	for v, want := range map[float64]string{0.0914: "0.091", 1.5: "1.500", 12.345: "12.35", 181.07: "181.1", 9300.4: "9300"} {
		if got := FormatValue(v); got != want {
			t.Errorf("FormatValue(%v) = %q, want %q", v, got, want)
		}
	}
}

// TestRecordRoundTrip appends through Record, as benchmarks do, and reads
// the file back. Not parallel: it sets the environment.
func TestRecordRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results.jsonl")
	t.Setenv(ResultsEnv, path)
	want := []Result{
		{Workload: "start", System: "berth", Runs: []float64{0.09, 0.1}, Bench: "BenchmarkContainerStart"},
		{Workload: "start", System: "runc run", Floor: true, Runs: []float64{0.03}},
		{Workload: "start", System: "podman", Skipped: "podman is not installed"},
		{Workload: "pull", System: "berth", Unit: "MB/s", Runs: []float64{100}, Note: "5 layers"},
	}
	for _, r := range want {
		if err := Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := Record(Result{Workload: "bad"}); err == nil {
		t.Error("Record accepted a result without a system")
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := ReadResults(f)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back %+v\nwant %+v", got, want)
	}
}

func TestReadResultsErrors(t *testing.T) {
	t.Parallel()
	for name, in := range map[string]string{
		"not json":   "{\"workload\":\"w\",\"system\":\"s\",\"runs\":[1]}\nnot json\n",
		"no runs":    "{\"workload\":\"w\",\"system\":\"s\"}\n",
		"wrong type": "{\"workload\":\"w\",\"system\":\"s\",\"runs\":\"fast\"}\n",
	} {
		if _, err := ReadResults(strings.NewReader(in)); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v, want an invalid-argument error", name, err)
		}
	}
	got, err := ReadResults(strings.NewReader("\n  \n{\"workload\":\"w\",\"system\":\"s\",\"runs\":[1]}\n"))
	if err != nil || len(got) != 1 {
		t.Errorf("blank lines: %v %v", got, err)
	}
}

func TestStartTarget(t *testing.T) {
	t.Parallel()
	runs := func(v float64) Result { return Result{Runs: []float64{v}} }
	for _, tc := range []struct {
		berth, runc, docker Result
		want                string
	}{
		{runs(0.05), runs(0.03), runs(0.4), "target under 2× runc run (0.060 s): met; under ½ docker (0.200 s): met"},
		{runs(0.09), runs(0.03), runs(0.4), "target under 2× runc run (0.060 s): not met; under ½ docker (0.200 s): met"},
		{runs(0.09), runs(0.03), Result{}, "target under 2× runc run (0.060 s): not met"},
		{runs(0.09), Result{}, Result{}, ""},
	} {
		if got := startTarget(tc.berth, tc.runc, tc.docker); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}
