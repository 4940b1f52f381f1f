package spec

import (
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"berth/errdefs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultShmSize is /dev/shm's size when --shm-size is not given (64 MiB).
const DefaultShmSize = 64 << 20

// Docker's default masked and read-only /proc and /sys paths.
var (
	defaultMaskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// baseMounts are the kernel filesystems every container gets. /sys and
// the cgroup tree are read-only unless privileged, as in Docker.
func baseMounts(privileged, readonlyRootfs bool) []specs.Mount {
	roSys := !privileged || readonlyRootfs
	sysOpts := []string{"nosuid", "noexec", "nodev"}
	if roSys {
		sysOpts = append(sysOpts, "ro")
	}
	return []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: slices.Clone(sysOpts)},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
}

// shmMount is a private /dev/shm tmpfs; callers that share IPC namespaces
// (--ipc shareable/container:) pass a host directory to bind instead.
func shmMount(size int64, bindSource string) specs.Mount {
	if bindSource != "" {
		return specs.Mount{Destination: "/dev/shm", Type: "bind", Source: bindSource, Options: []string{"rbind", "rprivate"}}
	}
	if size <= 0 {
		size = DefaultShmSize
	}
	return specs.Mount{
		Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
		Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(size, 10)},
	}
}

// tmpfsMounts turns --tmpfs entries (path → "opt,opt") into mounts with
// Docker's defaults noexec,nosuid,nodev, which the user's options can
// override (exec, suid, dev).
func tmpfsMounts(tmpfs map[string]string) ([]specs.Mount, error) {
	dests := make([]string, 0, len(tmpfs))
	for d := range tmpfs {
		dests = append(dests, d)
	}
	slices.Sort(dests)
	var out []specs.Mount
	for _, d := range dests {
		if !path.IsAbs(d) {
			return nil, fmt.Errorf("invalid mount config for type \"tmpfs\": mount path must be absolute: %q: %w", d, errdefs.ErrInvalidArgument)
		}
		opts := []string{"noexec", "nosuid", "nodev"}
		for _, o := range strings.Split(tmpfs[d], ",") {
			o = strings.TrimSpace(o)
			if o == "" {
				continue
			}
			if opp, ok := opposite[o]; ok {
				opts = slices.DeleteFunc(opts, func(x string) bool { return x == opp })
			}
			if !slices.Contains(opts, o) {
				opts = append(opts, o)
			}
		}
		out = append(out, specs.Mount{Destination: path.Clean(d), Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	return out, nil
}

var opposite = map[string]string{
	"exec": "noexec", "noexec": "exec", "suid": "nosuid", "nosuid": "suid",
	"dev": "nodev", "nodev": "dev", "ro": "rw", "rw": "ro",
}

// mergeMounts lays user mounts over the defaults: a user mount replaces a
// default with the same destination (e.g. -v /host:/dev/shm), and mounts
// are ordered so parents precede children, as the runtime mounts in order.
func mergeMounts(defaults, user []specs.Mount) []specs.Mount {
	out := make([]specs.Mount, 0, len(defaults)+len(user))
	for _, m := range defaults {
		if !slices.ContainsFunc(user, func(u specs.Mount) bool { return path.Clean(u.Destination) == m.Destination }) {
			out = append(out, m)
		}
	}
	userSorted := slices.Clone(user)
	slices.SortStableFunc(userSorted, func(a, b specs.Mount) int {
		return depth(a.Destination) - depth(b.Destination)
	})
	return append(out, userSorted...)
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// standardDevices are the nodes runc and crun create in every /dev; listing
// them keeps the spec complete for any runtime. /dev/console comes from the
// terminal and /dev/ptmx from devpts.
var standardDevices = []struct {
	path         string
	major, minor int64
}{
	{"/dev/null", 1, 3}, {"/dev/zero", 1, 5}, {"/dev/full", 1, 7},
	{"/dev/random", 1, 8}, {"/dev/urandom", 1, 9}, {"/dev/tty", 5, 0},
}

func defaultDevices() []specs.LinuxDevice {
	mode := os.FileMode(0o666)
	var zero uint32
	out := make([]specs.LinuxDevice, 0, len(standardDevices))
	for _, d := range standardDevices {
		out = append(out, specs.LinuxDevice{Path: d.path, Type: "c", Major: d.major, Minor: d.minor, FileMode: &mode, UID: &zero, GID: &zero})
	}
	return out
}

// defaultDeviceRules denies every device, then allows the standard nodes,
// the pty pair, and mknod of any node (creating one is harmless when it
// cannot be opened).
func defaultDeviceRules() []specs.LinuxDeviceCgroup {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Access: "m"},
		{Allow: true, Type: "b", Access: "m"},
	}
	for _, d := range standardDevices {
		rules = append(rules, devRule("c", d.major, d.minor))
	}
	rules = append(rules,
		devRule("c", 5, 1),    // /dev/console
		devRule("c", 5, 2),    // /dev/ptmx
		devRule("c", 136, -1), // /dev/pts/*
	)
	return rules
}

func devRule(typ string, major, minor int64) specs.LinuxDeviceCgroup {
	r := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Access: "rwm"}
	if minor >= 0 {
		r.Minor = &minor
	}
	return r
}

// ParseDeviceCgroupRule parses a --device-cgroup-rule value such as
// "c 1:3 rwm" or "a *:* m".
func ParseDeviceCgroupRule(rule string) (specs.LinuxDeviceCgroup, error) {
	bad := fmt.Errorf("invalid device cgroup rule %q: %w", rule, errdefs.ErrInvalidArgument)
	f := strings.Fields(rule)
	if len(f) != 3 || (f[0] != "a" && f[0] != "b" && f[0] != "c") {
		return specs.LinuxDeviceCgroup{}, bad
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok || strings.Trim(f[2], "rwm") != "" || f[2] == "" {
		return specs.LinuxDeviceCgroup{}, bad
	}
	r := specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Access: f[2]}
	for _, p := range []struct {
		s   string
		dst **int64
	}{{maj, &r.Major}, {min, &r.Minor}} {
		if p.s == "*" {
			continue
		}
		n, err := strconv.ParseInt(p.s, 10, 64)
		if err != nil || n < 0 {
			return specs.LinuxDeviceCgroup{}, bad
		}
		*p.dst = &n
	}
	return r, nil
}
