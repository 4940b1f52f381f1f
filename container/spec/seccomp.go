package spec

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The default seccomp profile has the effect of Docker's default profile:
// everything not listed fails with EPERM; the list below is what ordinary
// programs need; syscalls that reach host-global kernel state (mount,
// namespaces, modules, time, keyrings, BPF, perf, ptrace of other
// processes...) are allowed only when the container holds the capability
// that already guards them, so --cap-add SYS_ADMIN works without also
// passing --security-opt seccomp=unconfined. Names unknown to the running
// kernel or libseccomp are skipped by runc and crun, so one list serves all
// kernel versions. It assumes a kernel >= 4.8, where ptrace can no longer be
// used to bypass seccomp, as Docker does for ptrace.
//
// The list is written from the Linux syscall tables, not copied.

// seccompAllowed is allowed unconditionally on every architecture.
var seccompAllowed = []string{
	"accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk",
	"cachestat", "capget", "capset", "chdir", "chmod", "chown", "chown32",
	"clock_adjtime", "clock_adjtime64", "clock_getres", "clock_getres_time64",
	"clock_gettime", "clock_gettime64", "clock_nanosleep",
	"clock_nanosleep_time64", "close", "close_range", "connect",
	"copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
	"epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
	"epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2",
	"execve", "execveat", "exit", "exit_group", "faccessat", "faccessat2",
	"fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir",
	"fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
	"fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock",
	"fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64",
	"fstatfs", "fstatfs64", "fsync", "ftruncate", "ftruncate64", "futex",
	"futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
	"futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64",
	"getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
	"getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
	"getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid",
	"getresgid32", "getresuid", "getresuid32", "getrlimit", "get_robust_list",
	"getrusage", "getsid", "getsockname", "getsockopt", "get_thread_area",
	"gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
	"inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
	"io_cancel", "ioctl", "io_destroy", "io_getevents", "io_pgetevents",
	"io_pgetevents_time64", "ioprio_get", "ioprio_set", "io_setup",
	"io_submit", "ipc", "kill", "landlock_add_rule",
	"landlock_create_ruleset", "landlock_restrict_self", "lchown",
	"lchown32", "lgetxattr", "link", "linkat", "listen", "listmount",
	"listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr",
	"lseek", "lsetxattr", "lstat", "lstat64", "madvise", "map_shadow_stack",
	"membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
	"mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap",
	"mmap2", "mprotect", "mq_getsetattr", "mq_notify", "mq_open",
	"mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
	"mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl",
	"msgget", "msgrcv", "msgsnd", "msync", "munlock", "munlockall", "munmap",
	"name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
	"openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe",
	"pipe2", "pkey_alloc", "pkey_free", "pkey_mprotect", "poll", "ppoll",
	"ppoll_time64", "prctl", "pread64", "preadv", "preadv2", "prlimit64",
	"process_mrelease", "process_vm_readv", "process_vm_writev", "pselect6",
	"pselect6_time64", "ptrace", "pwrite64", "pwritev", "pwritev2", "read",
	"readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom",
	"recvmmsg", "recvmmsg_time64", "recvmsg", "remap_file_pages",
	"removexattr", "removexattrat", "rename", "renameat", "renameat2",
	"restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending",
	"rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
	"sched_getaffinity", "sched_getattr", "sched_getparam",
	"sched_get_priority_max", "sched_get_priority_min", "sched_getscheduler",
	"sched_rr_get_interval", "sched_rr_get_interval_time64",
	"sched_setaffinity", "sched_setattr", "sched_setparam",
	"sched_setscheduler", "sched_yield", "seccomp", "select", "semctl",
	"semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
	"sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32",
	"setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
	"setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
	"setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
	"setreuid", "setreuid32", "setrlimit", "set_robust_list", "setsid",
	"setsockopt", "set_thread_area", "set_tid_address", "setuid", "setuid32",
	"setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget",
	"shutdown", "sigaltstack", "signalfd", "signalfd4", "sigprocmask",
	"sigreturn", "socketcall", "socketpair", "splice", "stat", "stat64",
	"statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat",
	"sync", "sync_file_range", "syncfs", "sysinfo", "tee", "tgkill", "time",
	"timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
	"timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
	"timerfd_gettime", "timerfd_gettime64", "timerfd_settime",
	"timerfd_settime64", "times", "tkill", "truncate", "truncate64",
	"ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe",
	"utime", "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice",
	"wait4", "waitid", "waitpid", "write", "writev",
}

// seccompArchAllowed adds each architecture's own calls.
var seccompArchAllowed = map[string][]string{
	"amd64": {"arch_prctl", "modify_ldt"},
	"386":   {"arch_prctl", "modify_ldt"},
	"arm64": {"arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush", "set_tls"},
}

// seccompArches maps a GOARCH to the native arch plus the compat ABIs a
// process on it can call, as Docker's archMap does.
var seccompArches = map[string][]specs.Arch{
	"amd64": {specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
	"386":   {specs.ArchX86},
	"arm64": {specs.ArchAARCH64, specs.ArchARM},
}

// seccompByCap lists syscalls allowed only with a capability. Order is
// kept stable for golden files.
var seccompByCap = []struct {
	cap   string
	names []string
}{
	{"CAP_DAC_READ_SEARCH", []string{"open_by_handle_at"}},
	{"CAP_SYS_ADMIN", []string{
		"bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount",
		"fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
		"move_mount", "open_tree", "perf_event_open", "quotactl",
		"quotactl_fd", "setdomainname", "sethostname", "setns", "syslog",
		"umount", "umount2", "unshare",
	}},
	{"CAP_SYS_BOOT", []string{"reboot"}},
	{"CAP_SYS_CHROOT", []string{"chroot"}},
	{"CAP_SYS_MODULE", []string{"delete_module", "init_module", "finit_module"}},
	{"CAP_SYS_PACCT", []string{"acct"}},
	{"CAP_SYS_PTRACE", []string{"kcmp", "pidfd_getfd", "process_madvise"}},
	{"CAP_SYS_RAWIO", []string{"iopl", "ioperm"}},
	{"CAP_SYS_TIME", []string{"settimeofday", "stime", "clock_settime", "clock_settime64"}},
	{"CAP_SYS_TTY_CONFIG", []string{"vhangup"}},
	{"CAP_SYS_NICE", []string{"get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"}},
	{"CAP_SYSLOG", []string{"syslog"}},
	{"CAP_BPF", []string{"bpf"}},
	{"CAP_PERFMON", []string{"perf_event_open"}},
}

// Namespace-creating clone flags; without CAP_SYS_ADMIN clone may not use
// them (the kernel would allow CLONE_NEWUSER unprivileged, which is the
// door to most container escapes).
const cloneNamespaceFlags = 0x00020000 | // CLONE_NEWNS
	0x02000000 | // CLONE_NEWCGROUP
	0x04000000 | // CLONE_NEWUTS
	0x08000000 | // CLONE_NEWIPC
	0x10000000 | // CLONE_NEWUSER
	0x20000000 | // CLONE_NEWPID
	0x40000000 // CLONE_NEWNET

const (
	errnoEPERM  = 1
	errnoENOSYS = 38
	afVSOCK     = 40
)

// personalities that only change how the process sees the system:
// PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query value.
var allowedPersonalities = []uint64{0x0, 0x8, 0x20000, 0x20008, 0xffffffff}

// DefaultSeccomp returns the default profile for a process of goarch
// holding caps (the effective set after --cap-add/--cap-drop).
func DefaultSeccomp(goarch string, caps []string) *specs.LinuxSeccomp {
	eperm := uint(errnoEPERM)
	enosys := uint(errnoENOSYS)
	allow := slices.Clone(seccompAllowed)
	allow = append(allow, seccompArchAllowed[goarch]...)
	for _, g := range seccompByCap {
		if slices.Contains(caps, g.cap) {
			for _, n := range g.names {
				if !slices.Contains(allow, n) {
					allow = append(allow, n)
				}
			}
		}
	}
	sc := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: &eperm,
		Architectures:   slices.Clone(seccompArches[goarch]),
		Syscalls: []specs.LinuxSyscall{
			{Names: allow, Action: specs.ActAllow},
			{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: afVSOCK, Op: specs.OpNotEqual},
			}},
		},
	}
	for _, p := range allowedPersonalities {
		sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
			Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: p, Op: specs.OpEqualTo}},
		})
	}
	if !slices.Contains(caps, "CAP_SYS_ADMIN") {
		// clone3 passes its flags in a struct seccomp cannot read, so it
		// fails with ENOSYS and libc falls back to clone, which is checked.
		sc.Syscalls = append(sc.Syscalls,
			specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: cloneNamespaceFlags, ValueTwo: 0, Op: specs.OpMaskedEqual},
			}},
			specs.LinuxSyscall{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: &enosys},
		)
	}
	return sc
}
