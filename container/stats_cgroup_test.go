package container

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadV2 reads a cgroup2 directory laid out as the kernel writes it:
// one with every controller, one with only the core files (this machine's
// cgroup2 offers hugetlb alone).
func TestReadV2(t *testing.T) {
	t.Parallel()
	core := map[string]string{
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n",
		"cgroup.threads": "101\n102\n103\n",
	}
	full := map[string]string{
		"cpu.stat":       "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\nnr_throttled 2\nthrottled_usec 7\n",
		"cgroup.threads": "101\n",
		"memory.current": "4096\n", "memory.peak": "8192\n", "memory.max": "max\n", "memory.stat": "anon 4096\nfile 0\n",
		"pids.current": "2\n", "pids.max": "50\n",
		"io.stat": "8:0 rbytes=100 wbytes=200 rios=3 wios=4 dbytes=0 dios=0\n",
	}
	cases := []struct {
		name  string
		files map[string]string
		mem   bool
		want  container.StatsResponse
	}{
		{"core only", core, false, container.StatsResponse{
			CPUStats:  container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1500000, UsageInUsermode: 1000000, UsageInKernelmode: 500000}},
			PidsStats: container.PidsStats{Current: 3}, MemoryStats: container.MemoryStats{Stats: map[string]uint64{}}}},
		{"every controller", full, true, container.StatsResponse{
			CPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1500000, UsageInUsermode: 1000000, UsageInKernelmode: 500000},
				ThrottlingData: container.ThrottlingData{Periods: 10, ThrottledPeriods: 2, ThrottledTime: 7000}},
			MemoryStats: container.MemoryStats{Usage: 4096, MaxUsage: 8192, Stats: map[string]uint64{"anon": 4096, "file": 0}},
			PidsStats:   container.PidsStats{Current: 2, Limit: 50},
			BlkioStats: container.BlkioStats{
				IoServiceBytesRecursive: []container.BlkioStatEntry{{Major: 8, Op: "read", Value: 100}, {Major: 8, Op: "write", Value: 200}},
				IoServicedRecursive:     []container.BlkioStatEntry{{Major: 8, Op: "read", Value: 3}, {Major: 8, Op: "write", Value: 4}}}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			var st container.StatsResponse
			if mem := readV2(&st, dir); mem != tc.mem {
				t.Errorf("memory accounted %v, want %v", mem, tc.mem)
			}
			if !reflect.DeepEqual(st, tc.want) {
				t.Errorf("stats\n%+v\nwant\n%+v", st, tc.want)
			}
		})
	}
}

func TestReadV1Blkio(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cg := "/berth/c1"
	writeFiles(t, root, map[string]string{
		"blkio/berth/c1/blkio.throttle.io_service_bytes_recursive": "8:0 Read 4096\n8:0 Write 512\n8:0 Total 4608\nTotal 4608\n",
		"memory/berth/c1/memory.usage_in_bytes":                    "1024\n",
		"pids/berth/c1/pids.current":                               "1\n",
	})
	var st container.StatsResponse
	if !readV1(&st, root, cg) {
		t.Error("memory.usage_in_bytes present but not accounted")
	}
	want := []container.BlkioStatEntry{{Major: 8, Op: "Read", Value: 4096}, {Major: 8, Op: "Write", Value: 512}, {Major: 8, Op: "Total", Value: 4608}}
	if !reflect.DeepEqual(st.BlkioStats.IoServiceBytesRecursive, want) || st.MemoryStats.Usage != 1024 || st.PidsStats.Current != 1 {
		t.Errorf("v1: %+v", st)
	}
}
