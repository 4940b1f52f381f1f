package spec

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"berth/errdefs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// dockerProfile is Docker's seccomp profile file format (what
// --security-opt seccomp=<file> sends, as JSON text): the OCI fields plus
// an architecture map and per-rule capability/arch/kernel filters.
type dockerProfile struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []specs.Arch             `json:"architectures,omitempty"`
	ArchMap         []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap,omitempty"`
	Flags            []specs.LinuxSeccompFlag `json:"flags,omitempty"`
	ListenerPath     string                   `json:"listenerPath,omitempty"`
	ListenerMetadata string                   `json:"listenerMetadata,omitempty"`
	Syscalls         []dockerSyscall          `json:"syscalls"`
}

type dockerSyscall struct {
	Name     string                   `json:"name,omitempty"` // before "names" existed
	Names    []string                 `json:"names,omitempty"`
	Action   specs.LinuxSeccompAction `json:"action"`
	ErrnoRet *uint                    `json:"errnoRet,omitempty"`
	Args     []specs.LinuxSeccompArg  `json:"args,omitempty"`
	Includes *seccompFilter           `json:"includes,omitempty"`
	Excludes *seccompFilter           `json:"excludes,omitempty"`
}

type seccompFilter struct {
	Caps      []string `json:"caps,omitempty"`
	Arches    []string `json:"arches,omitempty"`
	MinKernel string   `json:"minKernel,omitempty"`
}

// nativeArch names the libseccomp architecture of a GOARCH.
var nativeArch = map[string]specs.Arch{
	"amd64": specs.ArchX86_64, "386": specs.ArchX86, "arm64": specs.ArchAARCH64,
	"arm": specs.ArchARM, "ppc64le": specs.ArchPPC64LE, "s390x": specs.ArchS390X,
	"riscv64": specs.ArchRISCV64, "loong64": specs.ArchLOONGARCH64,
}

// SeccompFromProfile evaluates a Docker-format seccomp profile for a
// process of goarch holding caps on a kernel of the given release ("" when
// unknown: minKernel conditions then hold). A rule applies when none of its
// "excludes" match and all of its "includes" do: every listed capability
// held, the architecture listed, the kernel new enough.
func SeccompFromProfile(data []byte, goarch string, caps []string, kernel string) (*specs.LinuxSeccomp, error) {
	var p dockerProfile
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("seccomp profile: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile: no defaultAction: %w", errdefs.ErrInvalidArgument)
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "'architectures' and 'archMap' were specified in the seccomp profile, use either 'architectures' or 'archMap'")
	}
	out := &specs.LinuxSeccomp{
		DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet,
		Architectures: p.Architectures, Flags: p.Flags,
		ListenerPath: p.ListenerPath, ListenerMetadata: p.ListenerMetadata,
	}
	for _, a := range p.ArchMap {
		if a.Arch == nativeArch[goarch] {
			out.Architectures = append([]specs.Arch{a.Arch}, a.SubArches...)
		}
	}
	for i, c := range p.Syscalls {
		if c.Name != "" && len(c.Names) > 0 {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "syscall 'name' and 'names' were specified in the seccomp profile, use either 'name' or 'names'")
		}
		names := c.Names
		if c.Name != "" {
			names = []string{c.Name}
		}
		if len(names) == 0 || c.Action == "" {
			return nil, fmt.Errorf("seccomp profile: syscall rule %d needs names and an action: %w", i, errdefs.ErrInvalidArgument)
		}
		ok, err := ruleApplies(c, goarch, caps, kernel)
		if err != nil {
			return nil, err
		}
		if ok {
			out.Syscalls = append(out.Syscalls, specs.LinuxSyscall{Names: names, Action: c.Action, ErrnoRet: c.ErrnoRet, Args: c.Args})
		}
	}
	return out, nil
}

func ruleApplies(c dockerSyscall, goarch string, caps []string, kernel string) (bool, error) {
	if ex := c.Excludes; ex != nil {
		if slices.Contains(ex.Arches, goarch) || slices.ContainsFunc(ex.Caps, func(x string) bool { return slices.Contains(caps, x) }) {
			return false, nil
		}
		if ex.MinKernel != "" {
			newer, err := kernelAtLeast(kernel, ex.MinKernel)
			if err != nil || newer {
				return false, err
			}
		}
	}
	if in := c.Includes; in != nil {
		if len(in.Arches) > 0 && !slices.Contains(in.Arches, goarch) {
			return false, nil
		}
		for _, x := range in.Caps {
			if !slices.Contains(caps, x) {
				return false, nil
			}
		}
		if in.MinKernel != "" {
			return kernelAtLeast(kernel, in.MinKernel)
		}
	}
	return true, nil
}

// kernelAtLeast compares "major.minor" prefixes of kernel releases; an
// unknown running kernel counts as new enough.
func kernelAtLeast(kernel, min string) (bool, error) {
	want, ok := majorMinor(min)
	if !ok {
		return false, fmt.Errorf("seccomp profile: invalid minKernel %q: %w", min, errdefs.ErrInvalidArgument)
	}
	have, ok := majorMinor(kernel)
	if !ok {
		return true, nil
	}
	return have[0] > want[0] || (have[0] == want[0] && have[1] >= want[1]), nil
}

func majorMinor(v string) ([2]int, bool) {
	maj, rest, _ := strings.Cut(v, ".")
	min, _, _ := strings.Cut(rest, ".")
	if i := strings.IndexFunc(min, func(r rune) bool { return r < '0' || r > '9' }); i >= 0 {
		min = min[:i] // "4-rc1"
	}
	a, err1 := strconv.Atoi(maj)
	b, err2 := strconv.Atoi(min)
	return [2]int{a, b}, err1 == nil && err2 == nil
}
