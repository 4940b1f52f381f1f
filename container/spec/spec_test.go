package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// busyboxInput is `docker run busybox` with the given changes.
func busyboxInput(change func(*Input)) Input {
	in := Input{
		ID:             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Config:         &container.Config{Image: "busybox"},
		HostConfig:     &container.HostConfig{},
		Image:          image(nil, []string{"sh"}, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"),
		Rootfs:         "/var/lib/berth/snapshots/overlay2/7/merged",
		User:           User{Home: "/root"},
		Hostname:       "0123456789ab",
		HostsPath:      "/var/lib/berth/containers/0123/hosts",
		HostnamePath:   "/var/lib/berth/containers/0123/hostname",
		ResolvConfPath: "/var/lib/berth/containers/0123/resolv.conf",
		NetNSPath:      "/run/berth/netns/0123456789ab",
		HostRlimits:    map[string]uint64{"nofile": 20000, "nproc": 96365},
		Arch:           "amd64",
		CapLastCap:     40,
	}
	if change != nil {
		change(&in)
	}
	return in
}

func mustGenerate(t *testing.T, in Input) *specs.Spec {
	t.Helper()
	s, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestGenerateErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Input)
		kind   error
		msg    string
	}{
		{"ulimit above host hard", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 1048576}}
		}, errdefs.ErrInvalidArgument, "ulimit nofile: hard limit 1048576 exceeds the host's hard limit 20000"},
		{"ulimit unlimited above host", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nproc", Soft: -1, Hard: -1}}
		}, errdefs.ErrInvalidArgument, "ulimit nproc: hard limit -1 exceeds"},
		{"ulimit soft above hard", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 200, Hard: 100}}
		}, errdefs.ErrInvalidArgument, "soft limit 200 is greater than hard limit 100"},
		{"ulimit unknown", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "bogus", Soft: 1, Hard: 1}}
		}, errdefs.ErrInvalidArgument, "invalid ulimit type"},
		{"memory below 6MB", func(in *Input) { in.HostConfig.Memory = 4 << 20 }, errdefs.ErrInvalidArgument, "Minimum memory limit allowed is 6MB"},
		{"swap without memory", func(in *Input) { in.HostConfig.MemorySwap = 1 << 30 }, errdefs.ErrInvalidArgument, "You should always set the Memory limit when using Memoryswap limit"},
		{"swap below memory", func(in *Input) { in.HostConfig.Memory, in.HostConfig.MemorySwap = 1<<30, 512<<20 }, errdefs.ErrInvalidArgument, "Minimum memoryswap limit should be larger than memory limit"},
		{"cpus and period", func(in *Input) { in.HostConfig.NanoCPUs, in.HostConfig.CPUPeriod = 1e9, 50000 }, errdefs.ErrInvalidArgument, "Nano CPUs and CPU Period cannot both be set"},
		{"cpus above host", func(in *Input) { in.HostCPUs, in.HostConfig.NanoCPUs = 2, 3e9 }, errdefs.ErrInvalidArgument, "Range of CPUs is from 0.01 to 2.00"},
		{"rt runtime above period", func(in *Input) { in.HostConfig.CPURealtimePeriod, in.HostConfig.CPURealtimeRuntime = 1000, 2000 },
			errdefs.ErrInvalidArgument, "cpu-rt-runtime cannot be higher than cpu-rt-period"},
		{"oom score adj", func(in *Input) { in.HostConfig.OomScoreAdj = 1001 }, errdefs.ErrInvalidArgument, "range for oom score adj is [-1000, 1000]"},
		{"bad cap", func(in *Input) { in.HostConfig.CapAdd = []string{"NOT_A_CAP"} }, errdefs.ErrInvalidArgument, `unknown capability: "CAP_NOT_A_CAP"`},
		{"init without binary", func(in *Input) { yes := true; in.HostConfig.Init = &yes }, errdefs.ErrFailedPrecondition, "--init"},
		{"bad security opt", func(in *Input) { in.HostConfig.SecurityOpt = []string{"foo"} }, errdefs.ErrInvalidArgument, `invalid --security-opt 1: "foo"`},
		{"custom seccomp profile not JSON", func(in *Input) { in.HostConfig.SecurityOpt = []string{`seccomp={"defaultAction":`} }, errdefs.ErrInvalidArgument, "seccomp profile"},
		{"selinux label", func(in *Input) { in.HostConfig.SecurityOpt = []string{"label=user:USER"} }, errdefs.ErrNotImplemented, "SELinux"},
		{"non-namespaced sysctl", func(in *Input) { in.HostConfig.Sysctls = map[string]string{"vm.swappiness": "1"} }, errdefs.ErrInvalidArgument, "not namespaced"},
		{"net sysctl on host network", func(in *Input) {
			in.HostConfig.NetworkMode = "host"
			in.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_forward": "1"}
		}, errdefs.ErrInvalidArgument, "host's namespace"},
		{"pid container without path", func(in *Input) { in.HostConfig.PidMode = "container:abc" }, errdefs.ErrFailedPrecondition, "no namespace path"},
		{"relative tmpfs", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"run": ""} }, errdefs.ErrInvalidArgument, "must be absolute"},
		{"bad device rule", func(in *Input) { in.HostConfig.DeviceCgroupRules = []string{"x 1:3 rwm"} }, errdefs.ErrInvalidArgument, "invalid device cgroup rule"},
		{"no command", func(in *Input) { in.Image.Cmd = nil }, errdefs.ErrInvalidArgument, "no command specified"},
		{"relative workdir", func(in *Input) { in.Config.WorkingDir = "srv" }, errdefs.ErrInvalidArgument,
			"the working directory 'srv' is invalid, it needs to be an absolute path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Generate(busyboxInput(tt.change))
			if err == nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %v containing %q", err, tt.kind, tt.msg)
			}
		})
	}
}

func TestGenerateDefaults(t *testing.T) {
	t.Parallel()
	s := mustGenerate(t, busyboxInput(nil))
	p := s.Process
	if !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/" || p.Terminal || p.NoNewPrivileges || p.Rlimits != nil {
		t.Errorf("process = %+v", p)
	}
	if !slices.Equal(p.Capabilities.Effective, defaultCapabilities) || !slices.Equal(p.Capabilities.Bounding, defaultCapabilities) || p.Capabilities.Inheritable != nil {
		t.Errorf("caps = %+v", p.Capabilities)
	}
	if !slices.Equal(s.Linux.MaskedPaths, defaultMaskedPaths) || !slices.Equal(s.Linux.ReadonlyPaths, defaultReadonlyPaths) {
		t.Errorf("masked %q readonly %q", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
		t.Errorf("seccomp = %+v", s.Linux.Seccomp)
	}
	if r := s.Linux.Resources; r.Memory != nil || r.CPU != nil || r.Pids != nil || r.Devices[0].Allow {
		t.Errorf("resources = %+v", r)
	}
	if s.Linux.CgroupsPath != "/berth/"+busyboxInput(nil).ID {
		t.Errorf("cgroups path %q", s.Linux.CgroupsPath)
	}
	shm := findMount(t, s, "/dev/shm")
	if !slices.Contains(shm.Options, "size=67108864") {
		t.Errorf("/dev/shm = %+v", shm)
	}
	if sys := findMount(t, s, "/sys"); !slices.Contains(sys.Options, "ro") {
		t.Errorf("/sys = %+v", sys)
	}
	var kinds []specs.LinuxNamespaceType
	for _, ns := range s.Linux.Namespaces {
		kinds = append(kinds, ns.Type)
	}
	if want := []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount"}; !slices.Equal(kinds, want) {
		t.Errorf("namespaces %q, want %q (no cgroup ns on v1)", kinds, want)
	}
}

func findMount(t *testing.T, s *specs.Spec, dst string) specs.Mount {
	t.Helper()
	for _, m := range s.Mounts {
		if m.Destination == dst {
			return m
		}
	}
	t.Fatalf("no mount at %s", dst)
	return specs.Mount{}
}

func TestGenerateRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(*Input)
		check  func(*specs.Spec) bool
	}{
		{"non-root user has bounding caps only", func(in *Input) { in.User = User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}} },
			func(s *specs.Spec) bool {
				c := s.Process.Capabilities
				return c.Effective == nil && c.Permitted == nil && len(c.Bounding) == 14 &&
					s.Process.User.UID == 1000 && slices.Contains(s.Process.Env, "HOME=/")
			}},
		{"privileged", func(in *Input) { in.HostConfig.Privileged = true },
			func(s *specs.Spec) bool {
				return len(s.Process.Capabilities.Effective) == 41 && s.Linux.Seccomp == nil && s.Linux.MaskedPaths == nil &&
					s.Linux.ReadonlyPaths == nil && s.Linux.Resources.Devices[0].Allow && !slices.Contains(findOpt(s, "/sys"), "ro")
			}},
		{"cap-add SYS_ADMIN enables mount and unrestricted clone", func(in *Input) { in.HostConfig.CapAdd = []string{"SYS_ADMIN"} },
			func(s *specs.Spec) bool {
				return slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "mount") && slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "clone") &&
					!slices.ContainsFunc(s.Linux.Seccomp.Syscalls, func(r specs.LinuxSyscall) bool { return r.Names[0] == "clone3" && r.Action == specs.ActErrno })
			}},
		{"default profile restricts clone flags", nil,
			func(s *specs.Spec) bool {
				return !slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "mount") &&
					slices.ContainsFunc(s.Linux.Seccomp.Syscalls, func(r specs.LinuxSyscall) bool {
						return r.Names[0] == "clone" && len(r.Args) == 1 && r.Args[0].Value == 0x7E020000 && r.Args[0].Op == specs.OpMaskedEqual
					})
			}},
		{"seccomp unconfined", func(in *Input) { in.HostConfig.SecurityOpt = []string{"seccomp=unconfined"} },
			func(s *specs.Spec) bool { return s.Linux.Seccomp == nil && s.Linux.MaskedPaths != nil }},
		{"systempaths unconfined", func(in *Input) { in.HostConfig.SecurityOpt = []string{"systempaths=unconfined"} },
			func(s *specs.Spec) bool { return s.Linux.MaskedPaths == nil && s.Linux.ReadonlyPaths == nil }},
		{"no-new-privileges", func(in *Input) { in.HostConfig.SecurityOpt = []string{"no-new-privileges"} },
			func(s *specs.Spec) bool { return s.Process.NoNewPrivileges }},
		{"no-new-privileges:true legacy form", func(in *Input) { in.HostConfig.SecurityOpt = []string{"no-new-privileges:true"} },
			func(s *specs.Spec) bool { return s.Process.NoNewPrivileges }},
		{"workdir and entrypoint", func(in *Input) {
			in.Config.WorkingDir = "/tmp/x/../y"
			in.Config.Entrypoint = []string{"/bin/echo"}
		}, func(s *specs.Spec) bool {
			return s.Process.Cwd == "/tmp/y" && slices.Equal(s.Process.Args, []string{"/bin/echo"})
		}},
		{"read-only rootfs", func(in *Input) { in.HostConfig.ReadonlyRootfs = true }, func(s *specs.Spec) bool { return s.Root.Readonly }},
		{"shm size", func(in *Input) { in.HostConfig.ShmSize = 1 << 30 },
			func(s *specs.Spec) bool { return slices.Contains(findOpt(s, "/dev/shm"), "size=1073741824") }},
		{"ipc none has no shm", func(in *Input) { in.HostConfig.IpcMode = "none" },
			func(s *specs.Spec) bool {
				return !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" })
			}},
		{"tmpfs options override defaults", func(in *Input) { in.HostConfig.Tmpfs = map[string]string{"/run": "exec,size=1m"} },
			func(s *specs.Spec) bool {
				return slices.Equal(findOpt(s, "/run"), []string{"nosuid", "nodev", "exec", "size=1m"})
			}},
		{"user mount replaces default and is ordered after its parent", func(in *Input) {
			in.Mounts = []specs.Mount{{Destination: "/data/sub", Type: "bind", Source: "/b"}, {Destination: "/data", Type: "bind", Source: "/a"}, {Destination: "/etc/hosts", Type: "bind", Source: "/myhosts"}}
		}, func(s *specs.Spec) bool {
			i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/data" })
			j := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/data/sub" })
			hosts := slices.DeleteFunc(slices.Clone(s.Mounts), func(m specs.Mount) bool { return m.Destination != "/etc/hosts" })
			return i >= 0 && i < j && len(hosts) == 1 && hosts[0].Source == "/myhosts"
		}},
		{"host namespaces", func(in *Input) {
			in.HostConfig.NetworkMode, in.HostConfig.PidMode, in.HostConfig.IpcMode, in.HostConfig.UTSMode = "host", "host", "host", "host"
			in.NetNSPath = ""
		}, func(s *specs.Spec) bool {
			return len(s.Linux.Namespaces) == 1 && s.Linux.Namespaces[0].Type == specs.MountNamespace && s.Hostname == "" &&
				findMount2(s, "/dev/shm").Source == "/dev/shm"
		}},
		{"join pid namespace", func(in *Input) {
			in.HostConfig.PidMode = "container:abc"
			in.NamespacePaths = map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/42/ns/pid"}
		}, func(s *specs.Spec) bool {
			return s.Linux.Namespaces[0] == specs.LinuxNamespace{Type: specs.PIDNamespace, Path: "/proc/42/ns/pid"}
		}},
		{"network none is a new empty namespace", func(in *Input) { in.HostConfig.NetworkMode, in.NetNSPath = "none", "" },
			func(s *specs.Spec) bool {
				return s.Linux.Namespaces[1] == specs.LinuxNamespace{Type: specs.NetworkNamespace}
			}},
		{"cgroup v2 gets a cgroup namespace", func(in *Input) { in.CgroupV2 = true },
			func(s *specs.Spec) bool {
				return s.Linux.Namespaces[len(s.Linux.Namespaces)-1].Type == specs.CgroupNamespace
			}},
		{"cgroupns host on v2", func(in *Input) { in.CgroupV2, in.HostConfig.CgroupnsMode = true, "host" },
			func(s *specs.Spec) bool {
				return s.Linux.Namespaces[len(s.Linux.Namespaces)-1].Type == specs.MountNamespace
			}},
		{"cgroup parent", func(in *Input) { in.HostConfig.CgroupParent = "mine" },
			func(s *specs.Spec) bool { return s.Linux.CgroupsPath == "/mine/"+busyboxInput(nil).ID }},
		{"ulimit within host", func(in *Input) {
			in.HostConfig.Ulimits = []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}}
		}, func(s *specs.Spec) bool {
			return slices.Equal(s.Process.Rlimits, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 2048}})
		}},
		{"memory swap default doubles", func(in *Input) { in.HostConfig.Memory = 512 << 20 },
			func(s *specs.Spec) bool {
				return *s.Linux.Resources.Memory.Limit == 512<<20 && *s.Linux.Resources.Memory.Swap == 1<<30
			}},
		{"no swap accounting drops swap", func(in *Input) { in.HostConfig.Memory, in.NoSwapLimit = 512<<20, true },
			func(s *specs.Spec) bool {
				return *s.Linux.Resources.Memory.Limit == 512<<20 && s.Linux.Resources.Memory.Swap == nil
			}},
		{"memory swap unlimited", func(in *Input) { in.HostConfig.Memory, in.HostConfig.MemorySwap = 512<<20, -1 },
			func(s *specs.Spec) bool { return *s.Linux.Resources.Memory.Swap == -1 }},
		{"cpus to quota", func(in *Input) { in.HostConfig.NanoCPUs = 1.5e9 },
			func(s *specs.Spec) bool {
				return *s.Linux.Resources.CPU.Quota == 150000 && *s.Linux.Resources.CPU.Period == 100000
			}},
		{"cpu realtime", func(in *Input) { in.HostConfig.CPURealtimePeriod, in.HostConfig.CPURealtimeRuntime = 1000000, 950000 },
			func(s *specs.Spec) bool {
				return *s.Linux.Resources.CPU.RealtimePeriod == 1000000 && *s.Linux.Resources.CPU.RealtimeRuntime == 950000
			}},
		{"pids limit 0 is unlimited", func(in *Input) { var z int64; in.HostConfig.PidsLimit = &z },
			func(s *specs.Spec) bool { return *s.Linux.Resources.Pids.Limit == -1 }},
		{"sysctls", func(in *Input) {
			in.HostConfig.Sysctls = map[string]string{"net.ipv4.ip_unprivileged_port_start": "0", "kernel.shmmax": "1"}
		},
			func(s *specs.Spec) bool { return len(s.Linux.Sysctl) == 2 }},
		{"device cgroup rule", func(in *Input) { in.HostConfig.DeviceCgroupRules = []string{"c 10:* rw"} },
			func(s *specs.Spec) bool {
				r := s.Linux.Resources.Devices[len(s.Linux.Resources.Devices)-1]
				return r.Allow && r.Type == "c" && *r.Major == 10 && r.Minor == nil && r.Access == "rw"
			}},
		{"domainname", func(in *Input) { in.Config.Domainname = "example.org" }, func(s *specs.Spec) bool { return s.Domainname == "example.org" }},
		{"tty console size", func(in *Input) { in.Config.Tty, in.HostConfig.ConsoleSize = true, [2]uint{24, 80} },
			func(s *specs.Spec) bool {
				return s.Process.Terminal && *s.Process.ConsoleSize == specs.Box{Height: 24, Width: 80}
			}},
		{"arm64 seccomp arches", func(in *Input) { in.Arch = "arm64" },
			func(s *specs.Spec) bool {
				return slices.Equal(s.Linux.Seccomp.Architectures, []specs.Arch{specs.ArchAARCH64, specs.ArchARM}) &&
					!slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "arch_prctl")
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := mustGenerate(t, busyboxInput(tt.change))
			if !tt.check(s) {
				t.Fatalf("rule not applied; process=%+v linux.namespaces=%+v mounts=%+v", s.Process, s.Linux.Namespaces, s.Mounts)
			}
		})
	}
}

func findOpt(s *specs.Spec, dst string) []string { return findMount2(s, dst).Options }

func findMount2(s *specs.Spec, dst string) specs.Mount {
	for _, m := range s.Mounts {
		if m.Destination == dst {
			return m
		}
	}
	return specs.Mount{}
}

// Specs are edited by callers (the task layer adds hooks, tests tweak
// them); editing one must not leak into the next.
func TestGenerateDoesNotShareState(t *testing.T) {
	t.Parallel()
	a := mustGenerate(t, busyboxInput(nil))
	a.Linux.MaskedPaths[0] = "/changed"
	a.Linux.ReadonlyPaths[0] = "/changed"
	a.Process.Capabilities.Effective[0] = "CAP_SYS_ADMIN"
	a.Linux.Seccomp.Syscalls[0].Names[0] = "mount"
	a.Linux.Seccomp.Architectures[0] = specs.ArchARM
	b := mustGenerate(t, busyboxInput(nil))
	if b.Linux.MaskedPaths[0] != "/proc/asound" || b.Linux.ReadonlyPaths[0] != "/proc/bus" ||
		b.Process.Capabilities.Bounding[0] != "CAP_CHOWN" || a.Process.Capabilities.Bounding[0] != "CAP_CHOWN" ||
		b.Linux.Seccomp.Syscalls[0].Names[0] != "accept" || b.Linux.Seccomp.Architectures[0] != specs.ArchX86_64 {
		t.Fatalf("state shared between specs: %+v", b.Linux)
	}
}
