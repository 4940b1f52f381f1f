package spec

import (
	"fmt"
	"slices"
	"strings"

	"berth/errdefs"
)

// defaultCapabilities is Docker's default capability set, in Docker's order.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// DefaultCapabilities returns Docker's default capability set.
func DefaultCapabilities() []string { return slices.Clone(defaultCapabilities) }

// knownCapabilities lists every capability by number (index = cap number),
// up to CAP_CHECKPOINT_RESTORE (40), the last one in Linux 6.x.
var knownCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// allCapabilities is the "ALL" set: every known capability the kernel has
// (numbers up to lastCap; 0 means all known), further limited to the
// engine's own bounding set when given, because a runtime cannot grant a
// capability it does not hold itself (as when berth runs inside a
// container that lacks CAP_SYS_RESOURCE).
func allCapabilities(lastCap int, hostBounding []string) []string {
	var out []string
	for i, c := range knownCapabilities {
		if lastCap > 0 && i > lastCap {
			break
		}
		if hostBounding != nil && !slices.Contains(hostBounding, c) {
			continue
		}
		out = append(out, c)
	}
	return out
}

// normalizeCaps upper-cases names and adds the CAP_ prefix; "ALL" is
// reported separately. Unknown names are an error with Docker's wording.
func normalizeCaps(caps []string) (list []string, all bool, err error) {
	for _, c := range caps {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			all = true
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(knownCapabilities, c) {
			return nil, false, errdefs.Errorf(errdefs.ErrInvalidArgument, "unknown capability: %q", c)
		}
		if !slices.Contains(list, c) {
			list = append(list, c)
		}
	}
	return list, all, nil
}

// Capabilities applies --privileged, --cap-add and --cap-drop to the
// default set with Docker's precedence: privileged wins; "--cap-add ALL"
// is everything minus the drops; "--cap-drop ALL" keeps only the adds;
// otherwise drops are applied to the defaults, then adds appended.
// lastCap and hostBounding bound the "all" set (see allCapabilities).
func Capabilities(add, drop []string, privileged bool, lastCap int, hostBounding []string) ([]string, error) {
	all := allCapabilities(lastCap, hostBounding)
	if privileged {
		return all, nil
	}
	capDrop, dropAll, err := normalizeCaps(drop)
	if err != nil {
		return nil, fmt.Errorf("cap-drop: %w", err)
	}
	capAdd, addAll, err := normalizeCaps(add)
	if err != nil {
		return nil, fmt.Errorf("cap-add: %w", err)
	}
	var caps []string
	switch {
	case addAll:
		for _, c := range all {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
	case dropAll:
		caps = capAdd
	default:
		for _, c := range defaultCapabilities {
			if !slices.Contains(capDrop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range capAdd {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

// capabilityNumber returns the kernel number of a CAP_ name, or -1.
func capabilityNumber(name string) int {
	return slices.Index(knownCapabilities, name)
}
