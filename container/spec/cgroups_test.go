package spec

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"golang.org/x/sys/unix"
)

func ptr[T any](v T) *T { return &v }

// v1Full is a v1 host with every controller and interface file.
var v1Full = CgroupCaps{MemoryLimit: true, SwapLimit: true, MemoryReservation: true, MemorySwappiness: true,
	OomKillDisable: true, CPUShares: true, CPUCfs: true, CPURealtime: true, Cpuset: true, PidsLimit: true,
	BlkioWeight: true, BlkioWeightDevice: true, BlkioReadBps: true, BlkioWriteBps: true, BlkioReadIOps: true, BlkioWriteIOps: true}

func TestFitResources(t *testing.T) {
	t.Parallel()
	bare := CgroupCapsV2([]string{"hugetlb"}) // what this machine's cgroup2 offers
	full := CgroupCapsV2([]string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids"})
	dev := []*blkiodev.ThrottleDevice{{Path: "/dev/vda", Rate: 1 << 20}}
	const (
		memW  = "Your kernel does not support memory limit capabilities or the cgroup is not mounted. Limitation discarded."
		swapW = "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."
		swpW  = "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."
		resW  = "Your kernel does not support memory soft limit capabilities or the cgroup is not mounted. Limitation discarded."
		oomW  = "Your kernel does not support OomKillDisable. OomKillDisable discarded."
		pidsW = "Your kernel does not support PIDs limit capabilities or the cgroup is not mounted. PIDs limit discarded."
		shW   = "Your kernel does not support CPU shares or the cgroup is not mounted. Shares discarded."
		cfsW  = "Your kernel does not support CPU CFS scheduler. CPU period/quota discarded."
		setW  = "Your kernel does not support cpuset or the cgroup is not mounted. Cpuset discarded."
		bpsW  = "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."
	)
	cases := []struct {
		name     string
		caps     CgroupCaps
		in, want container.Resources
		warnings []string
		err      string
	}{
		{name: "v2 without memory", caps: bare,
			in:   container.Resources{Memory: 64 << 20, MemoryReservation: 32 << 20, MemorySwappiness: ptr[int64](5), OomKillDisable: ptr(true)},
			want: container.Resources{MemorySwap: -1}, warnings: []string{memW, swpW, resW, oomW}},
		{name: "v2 without pids", caps: bare, in: container.Resources{PidsLimit: ptr[int64](50)}, want: container.Resources{}, warnings: []string{pidsW}},
		{name: "pids 0 is the default, no warning", caps: bare, in: container.Resources{PidsLimit: ptr[int64](0), OomKillDisable: ptr(false)}, want: container.Resources{}, warnings: []string{}},
		{name: "v2 without cpu", caps: bare,
			in:   container.Resources{CPUShares: 512, CPUQuota: 50000, CpusetCpus: "0", BlkioDeviceReadBps: dev},
			want: container.Resources{BlkioDeviceReadBps: []*blkiodev.ThrottleDevice{}}, warnings: []string{shW, cfsW, setW, bpsW}},
		{name: "--cpus without cpu", caps: bare, in: container.Resources{NanoCPUs: 5e8}, err: "NanoCPUs can not be set, as your kernel does not support CPU CFS scheduler or the cgroup is not mounted"},
		{name: "real-time without support", caps: full, in: container.Resources{CPURealtimeRuntime: 1000}, err: "Your kernel does not support CPU real-time scheduler"},
		{name: "conflict beats missing cpu", caps: bare, in: container.Resources{NanoCPUs: 5e8, CPUPeriod: 1000}, err: "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{name: "too little memory beats missing memory", caps: bare, in: container.Resources{Memory: 1024}, err: "Minimum memory limit allowed is 6MB"},
		{name: "swap without memory", caps: full, in: container.Resources{MemorySwap: 100 << 20}, err: "You should always set the Memory limit when using Memoryswap limit, see usage"},
		{name: "v2 with controllers: swappiness and oom-kill-disable have no v2 file", caps: full,
			in:   container.Resources{Memory: 64 << 20, MemorySwappiness: ptr[int64](5), OomKillDisable: ptr(true), PidsLimit: ptr[int64](50), NanoCPUs: 5e8},
			want: container.Resources{Memory: 64 << 20, PidsLimit: ptr[int64](50), NanoCPUs: 5e8}, warnings: []string{swpW, oomW}},
		{name: "v1 without swap accounting", caps: CgroupCaps{MemoryLimit: true}, in: container.Resources{Memory: 64 << 20},
			want: container.Resources{Memory: 64 << 20, MemorySwap: -1}, warnings: []string{swapW}},
		{name: "v1 full keeps everything", caps: v1Full,
			in:   container.Resources{Memory: 64 << 20, MemorySwappiness: ptr[int64](5), OomKillDisable: ptr(true), PidsLimit: ptr[int64](5), CPUShares: 2, BlkioDeviceReadBps: dev},
			want: container.Resources{Memory: 64 << 20, MemorySwappiness: ptr[int64](5), OomKillDisable: ptr(true), PidsLimit: ptr[int64](5), CPUShares: 2, BlkioDeviceReadBps: dev}, warnings: []string{}},
		{name: "the CLI's unset swappiness", caps: bare, in: container.Resources{MemorySwappiness: ptr[int64](-1)}, want: container.Resources{}, warnings: []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := tc.in
			w, err := FitResources(&r, tc.caps)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err || !errdefs.InvalidArgument(err) {
					t.Fatalf("err %v, want invalid argument %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(w, tc.warnings) {
				t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(w, "\n"), strings.Join(tc.warnings, "\n"))
			}
			if !reflect.DeepEqual(r, tc.want) {
				t.Errorf("fitted %+v, want %+v", r, tc.want)
			}
		})
	}
}

// TestInfoWarnings pins the lines dockerd 20.10 printed in `docker info`
// on this machine's cgroup2 view (hugetlb only).
func TestInfoWarnings(t *testing.T) {
	t.Parallel()
	want := []string{"WARNING: No memory limit support", "WARNING: No swap limit support",
		"WARNING: No cpu cfs quota support", "WARNING: No cpu cfs period support", "WARNING: No cpu shares support",
		"WARNING: No cpuset support", "WARNING: No io.weight support", "WARNING: No io.weight (per device) support",
		"WARNING: No io.max (rbps) support", "WARNING: No io.max (wbps) support", "WARNING: No io.max (riops) support",
		"WARNING: No io.max (wiops) support"}
	if got := CgroupCapsV2([]string{"hugetlb"}).InfoWarnings(); !slices.Equal(got, want) {
		t.Errorf("v2 hugetlb only:\n%s", strings.Join(got, "\n"))
	}
	if got := CgroupCapsV2([]string{"cpuset", "cpu", "io", "memory", "pids"}).InfoWarnings(); len(got) != 0 {
		t.Errorf("v2 with every controller: %q", got)
	}
	// dockerd on this machine's v1 hierarchies (no blkio.weight) warns of nothing.
	v1 := v1Full
	v1.BlkioWeight, v1.BlkioWeightDevice = false, false
	if got := v1.InfoWarnings(); len(got) != 0 {
		t.Errorf("v1 without blkio weight: %q", got)
	}
	v1.PidsLimit, v1.OomKillDisable, v1.BlkioReadBps = false, false, false
	if got := v1.InfoWarnings(); !slices.Equal(got, []string{"WARNING: No oom kill disable support", "WARNING: No blkio throttle.read_bps_device support"}) {
		t.Errorf("v1 without oom control and read_bps: %q", got)
	}
}

// TestCgroupCapsV1 probes a tree laid out as v1 hierarchies are.
func TestCgroupCapsV1(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	files := map[string][]string{
		"memory": {"cgroup.procs", "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness", "memory.oom_control"},
		"cpu":    {"cgroup.procs", "cpu.shares", "cpu.cfs_quota_us"}, // no cfs_period_us: no CFS
		"pids":   {"cgroup.procs"},
	}
	for ctrl, names := range files {
		for _, n := range names {
			p := filepath.Join(root, ctrl, n)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := ReadCgroupCaps(root)
	want := CgroupCaps{Controllers: []string{"cpu", "memory", "pids"}, MemoryLimit: true, MemoryReservation: true,
		MemorySwappiness: true, OomKillDisable: true, CPUShares: true, PidsLimit: true}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("caps %+v\nwant %+v", got, want)
	}
}

// TestReadCgroupCapsMount mounts the kernel's cgroup2 hierarchy on a
// scratch directory: whatever the host's /sys/fs/cgroup is, a cgroup2
// mount must read as v2 with the controllers it lists.
func TestReadCgroupCapsMount(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("mounting cgroup2 needs root")
	}
	dir := t.TempDir()
	if err := unix.Mount("cgroup2", dir, "cgroup2", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		t.Skipf("the kernel cannot mount cgroup2 here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		t.Fatal(err)
	}
	got := ReadCgroupCaps(dir)
	if want := strings.Fields(string(b)); !got.V2 || got.Version() != "2" || !slices.Equal(got.Controllers, want) {
		t.Errorf("caps %+v, want v2 with %q", got, want)
	}
	if got.OomKillDisable || got.MemorySwappiness || got.CPURealtime {
		t.Errorf("v2 claims a v1-only feature: %+v", got)
	}
}
