package spec

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"berth/errdefs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

const testProfile = `{
	"defaultAction": "SCMP_ACT_ERRNO",
	"defaultErrnoRet": 1,
	"archMap": [
		{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
		{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}
	],
	"syscalls": [
		{"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
		{"name": "close", "action": "SCMP_ACT_ALLOW"},
		{"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
		{"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64"]}},
		{"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
		{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "excludes": {"caps": ["CAP_SYS_ADMIN"]},
		 "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}]},
		{"names": ["clone"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}}
	]
}`

func TestSeccompFromProfile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		arch      string
		caps      []string
		kernel    string
		wantArch  []specs.Arch
		wantNames []string
	}{
		{"amd64 defaults", "amd64", defaultCapabilities, "6.1.0", []specs.Arch{"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"},
			[]string{"read,write", "close", "arch_prctl", "ptrace", "clone"}},
		{"arm64 with SYS_ADMIN on old kernel", "arm64", []string{"CAP_SYS_ADMIN"}, "4.4.0-rc1", []specs.Arch{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
			[]string{"read,write", "close", "mount", "clone"}},
		{"unknown kernel counts as new", "arm64", nil, "", []specs.Arch{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"},
			[]string{"read,write", "close", "ptrace", "clone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc, err := SeccompFromProfile([]byte(testProfile), tt.arch, tt.caps, tt.kernel)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, r := range sc.Syscalls {
				names = append(names, strings.Join(r.Names, ","))
			}
			if !slices.Equal(names, tt.wantNames) || !slices.Equal(sc.Architectures, tt.wantArch) ||
				sc.DefaultAction != specs.ActErrno || *sc.DefaultErrnoRet != 1 {
				t.Fatalf("got arches %q rules %q", sc.Architectures, names)
			}
		})
	}
}

func TestSeccompFromProfileErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, profile string }{
		{"not json", `{`},
		{"no default action", `{"syscalls": []}`},
		{"both arch forms", `{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`},
		{"name and names", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}`},
		{"rule without action", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"]}]}`},
		{"bad minKernel", `{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["b"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "x"}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := SeccompFromProfile([]byte(tt.profile), "amd64", nil, "6.1"); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("err = %v, want invalid argument", err)
			}
		})
	}
}
