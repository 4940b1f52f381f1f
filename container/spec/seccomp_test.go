package spec

import (
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Calls that reach host-global state must never be in the unconditional
// list; each is either gated by a capability or denied outright.
var neverUnconditional = []string{
	"mount", "umount2", "unshare", "setns", "pivot_root", "keyctl", "add_key",
	"request_key", "bpf", "perf_event_open", "kexec_load", "kexec_file_load",
	"init_module", "finit_module", "delete_module", "reboot", "swapon",
	"swapoff", "open_by_handle_at", "userfaultfd", "io_uring_setup",
	"clone", "clone3", "settimeofday", "clock_settime", "acct", "iopl",
	"ioperm", "syslog", "vhangup", "sethostname", "setdomainname", "chroot",
	"lookup_dcookie", "fsopen", "move_mount", "open_tree", "quotactl",
	"nfsservctl", "uselib", "_sysctl", "personality", "socket",
}

func TestSeccompProfileShape(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, n := range seccompAllowed {
		if seen[n] {
			t.Errorf("%s listed twice", n)
		}
		seen[n] = true
		if slices.Contains(neverUnconditional, n) {
			t.Errorf("%s is allowed unconditionally", n)
		}
	}
	for _, g := range seccompByCap {
		if capabilityNumber(g.cap) < 0 {
			t.Errorf("unknown capability %s", g.cap)
		}
		for _, n := range g.names {
			if seen[n] {
				t.Errorf("%s is both unconditional and gated by %s", n, g.cap)
			}
		}
	}
	for _, arch := range []string{"amd64", "arm64"} {
		sc := DefaultSeccomp(arch, defaultCapabilities)
		if sc.DefaultAction != specs.ActErrno || *sc.DefaultErrnoRet != 1 || len(sc.Architectures) == 0 {
			t.Errorf("%s: %+v", arch, sc)
		}
		allow := sc.Syscalls[0].Names
		if !slices.Contains(allow, "chroot") || slices.Contains(allow, "mount") {
			t.Errorf("%s: SYS_CHROOT in the default set must allow chroot and nothing else of SYS_ADMIN's", arch)
		}
	}
	for _, tt := range []struct {
		cap, call string
	}{
		{"CAP_SYS_PTRACE", "kcmp"}, {"CAP_SYS_TIME", "settimeofday"}, {"CAP_SYS_MODULE", "init_module"},
		{"CAP_SYS_BOOT", "reboot"}, {"CAP_DAC_READ_SEARCH", "open_by_handle_at"}, {"CAP_BPF", "bpf"},
	} {
		if slices.Contains(DefaultSeccomp("amd64", defaultCapabilities).Syscalls[0].Names, tt.call) {
			t.Errorf("%s allowed without %s", tt.call, tt.cap)
		}
		if !slices.Contains(DefaultSeccomp("amd64", append(slices.Clone(defaultCapabilities), tt.cap)).Syscalls[0].Names, tt.call) {
			t.Errorf("%s not allowed with %s", tt.call, tt.cap)
		}
	}
}
