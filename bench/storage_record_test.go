package bench

import (
	"fmt"
	"strings"
	"testing"
)

// storageWorkloads names the storage benchmark's steps in the report.
var storageWorkloads = map[string]string{
	"create-500MB":        "storage: create a container on a 500 MB, 2,000-file image",
	"create-1GiB":         "storage: create a container on a 1 GiB one-file image",
	"write-1B":            "storage: first 1-byte write into a 1 GiB image file",
	"write-1MiB":          "storage: first 1 MiB write into a 1 GiB image file",
	"commit-1B-discard":   "storage: diff of the 1-byte change as a tar",
	"commit-1B-store":     "storage: diff of the 1-byte change into the content store",
	"commit-1MiB-discard": "storage: diff of the 1 MiB change as a tar",
	"commit-1MiB-store":   "storage: diff of the 1 MiB change into the content store",
}

// recordStorage records the storage benchmark's table: one workload a
// step, one system a driver (overlay2 first, the reference), with the disk
// space each step took as the note.
func recordStorage(b *testing.B, drivers []driver, steps []string, table map[string]map[string]*result) {
	b.Helper()
	for _, s := range steps {
		name := storageWorkloads[s]
		if name == "" {
			name = "storage: " + s
		}
		for _, d := range drivers {
			r := table[d.name][s]
			res := Result{Workload: name, System: "berth " + d.name}
			if len(r.times) == 0 {
				res.Skipped = "not measured (see the benchmark's log)"
				record(b, res)
				continue
			}
			for _, t := range r.times {
				res.Runs = append(res.Runs, t.Seconds())
			}
			switch {
			case strings.HasPrefix(s, "write-"):
				res.Note = fmt.Sprintf("disk +%s, snapshot Usage %s", fmtBytes(r.disk), fmtBytes(r.usage))
			case strings.HasPrefix(s, "commit-"):
				res.Note = "tar of " + fmtBytes(r.disk)
			default:
				res.Note = "disk +" + fmtBytes(r.disk)
			}
			res.Note = d.fstype + " loop filesystem; " + res.Note
			record(b, res)
		}
	}
}
