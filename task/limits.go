package task

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"berth/errdefs"
)

var rlimitResources = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

// CheckRlimits finds, before any runtime is run, the rlimits that the
// runtime would fail to set: those above this process's hard limit when it
// lacks CAP_SYS_RESOURCE (as root in many CI containers). The runtime itself
// only says "operation not permitted" for them.
func CheckRlimits(rlimits []specs.POSIXRlimit) error {
	if hasCapSysResource() {
		return nil
	}
	for _, rl := range rlimits {
		res, ok := rlimitResources[rl.Type]
		if !ok {
			return fmt.Errorf("rlimit %s: unknown type: %w", rl.Type, errdefs.ErrInvalidArgument)
		}
		var host unix.Rlimit
		if err := unix.Getrlimit(res, &host); err != nil {
			return fmt.Errorf("rlimit %s: %w", rl.Type, err)
		}
		if rl.Hard > host.Max || rl.Soft > host.Max {
			return fmt.Errorf("rlimit %s (soft %d, hard %d) above the host's hard limit %d without CAP_SYS_RESOURCE: %w",
				rl.Type, rl.Soft, rl.Hard, host.Max, errdefs.ErrFailedPrecondition)
		}
	}
	return nil
}

func hasCapSysResource() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_RESOURCE) != 0
}
