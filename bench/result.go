package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"berth/errdefs"
)

// ResultsEnv names the file that [Record] appends to.
const ResultsEnv = "BERTH_BENCH_RESULTS"

// Result is one system's runs of one workload, or the reason it was not
// measured.
type Result struct {
	Workload string    `json:"workload"`
	System   string    `json:"system"`
	Unit     string    `json:"unit,omitempty"` // "s" when empty
	Runs     []float64 `json:"runs,omitempty"`
	Floor    bool      `json:"floor,omitempty"`
	Skipped  string    `json:"skipped,omitempty"`
	Note     string    `json:"note,omitempty"`
	// Bench is the Go benchmark that measured it: the report leaves that
	// benchmark's own output lines out, the result says more.
	Bench string `json:"bench,omitempty"`
}

// UnitName is the unit of the runs.
func (r Result) UnitName() string {
	if r.Unit == "" {
		return "s"
	}
	return r.Unit
}

// HigherIsBetter reports whether the runs are rates.
func (r Result) HigherIsBetter() bool { return strings.HasSuffix(r.UnitName(), "/s") }

// Median is the middle run (the mean of the two middle ones for an even
// count); 0 without runs.
func (r Result) Median() float64 {
	if len(r.Runs) == 0 {
		return 0
	}
	s := slices.Clone(r.Runs)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// Range is the smallest and the largest run.
func (r Result) Range() (lo, hi float64) {
	if len(r.Runs) == 0 {
		return 0, 0
	}
	return slices.Min(r.Runs), slices.Max(r.Runs)
}

// Validate rejects a result the report could not place.
func (r Result) Validate() error {
	switch {
	case r.Workload == "" || r.System == "":
		return fmt.Errorf("result %q/%q: workload and system are required: %w", r.Workload, r.System, errdefs.ErrInvalidArgument)
	case len(r.Runs) == 0 && r.Skipped == "":
		return fmt.Errorf("result %s/%s: neither runs nor a reason for skipping: %w", r.Workload, r.System, errdefs.ErrInvalidArgument)
	case len(r.Runs) > 0 && r.Skipped != "":
		return fmt.Errorf("result %s/%s: both runs and skipped: %w", r.Workload, r.System, errdefs.ErrInvalidArgument)
	}
	return nil
}

// String is the one-line summary a benchmark prints.
func (r Result) String() string {
	if r.Skipped != "" {
		return fmt.Sprintf("%-50s %-28s skipped: %s", r.Workload, r.System, r.Skipped)
	}
	lo, hi := r.Range()
	return fmt.Sprintf("%-50s %-28s median %s %s (%s .. %s, %d runs)", r.Workload, r.System,
		FormatValue(r.Median()), r.UnitName(), FormatValue(lo), FormatValue(hi), len(r.Runs))
}

// FormatValue prints v with three significant digits, or as an integer
// when it is large.
func FormatValue(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0f", v)
	case v >= 100:
		return fmt.Sprintf("%.1f", v)
	case v >= 10:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}

// Record appends r as one line to the file named by $BERTH_BENCH_RESULTS;
// without that variable it only validates r. One write of one line keeps
// lines whole when benchmark processes append at once (O_APPEND).
func Record(r Result) error {
	if err := r.Validate(); err != nil {
		return err
	}
	path := os.Getenv(ResultsEnv)
	if path == "" {
		return nil
	}
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("result %s/%s: %w", r.Workload, r.System, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("results file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results file %s: %w", path, err)
	}
	return nil
}

// ReadResults parses a results file; blank lines are skipped, a bad line is
// an error naming its number.
func ReadResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(line), &res); err != nil {
			return nil, fmt.Errorf("results line %d: %v: %w", n, err, errdefs.ErrInvalidArgument)
		}
		if err := res.Validate(); err != nil {
			return nil, fmt.Errorf("results line %d: %w", n, err)
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("results: %w", err)
	}
	return out, nil
}
