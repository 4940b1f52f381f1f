package spec

import (
	"fmt"

	"berth/errdefs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// namespaces picks, per kind, a new namespace, one to join by path, or
// none (sharing the host's). The mount namespace is always new; user
// namespaces are not used (no --userns-remap).
func namespaces(in Input) ([]specs.LinuxNamespace, error) {
	hc := in.HostConfig
	if hc.UsernsMode != "" && !hc.UsernsMode.IsHost() {
		return nil, fmt.Errorf("userns mode %q: %w", hc.UsernsMode, errdefs.ErrNotImplemented)
	}
	var out []specs.LinuxNamespace
	join := func(t specs.LinuxNamespaceType, mode string) error {
		p := in.NamespacePaths[t]
		if p == "" {
			return fmt.Errorf("%s mode %q: no namespace path to join: %w", t, mode, errdefs.ErrFailedPrecondition)
		}
		out = append(out, specs.LinuxNamespace{Type: t, Path: p})
		return nil
	}
	switch {
	case hc.PidMode.IsHost():
	case hc.PidMode.IsContainer():
		if err := join(specs.PIDNamespace, string(hc.PidMode)); err != nil {
			return nil, err
		}
	default:
		out = append(out, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	switch {
	case hc.NetworkMode == "host":
	case in.NetNSPath != "":
		out = append(out, specs.LinuxNamespace{Type: specs.NetworkNamespace, Path: in.NetNSPath})
	case hc.NetworkMode.IsContainer():
		return nil, fmt.Errorf("network mode %q: no namespace path to join: %w", hc.NetworkMode, errdefs.ErrFailedPrecondition)
	default:
		out = append(out, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	switch {
	case hc.IpcMode.IsHost():
	case hc.IpcMode.IsContainer():
		if err := join(specs.IPCNamespace, string(hc.IpcMode)); err != nil {
			return nil, err
		}
	default:
		out = append(out, specs.LinuxNamespace{Type: specs.IPCNamespace})
	}
	if !hc.UTSMode.IsHost() {
		out = append(out, specs.LinuxNamespace{Type: specs.UTSNamespace})
	}
	out = append(out, specs.LinuxNamespace{Type: specs.MountNamespace})
	// Docker's default: a private cgroup namespace on cgroup v2, the
	// host's on v1, where a private one would hide nothing useful.
	if hc.CgroupnsMode.IsPrivate() || (hc.CgroupnsMode.IsEmpty() && in.CgroupV2) {
		out = append(out, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	} else if !hc.CgroupnsMode.Valid() {
		return nil, fmt.Errorf("cgroupns mode %q: %w", hc.CgroupnsMode, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// mountList is the defaults, /dev/shm, the per-container /etc files,
// --tmpfs entries, the init binary and the caller's mounts, in mount order.
func mountList(in Input) ([]specs.Mount, error) {
	hc := in.HostConfig
	defaults := baseMounts(hc.Privileged, hc.ReadonlyRootfs)
	switch {
	case hc.IpcMode.IsHost():
		defaults = append(defaults, shmMount(0, "/dev/shm"))
	case hc.IpcMode.IsNone():
	default:
		defaults = append(defaults, shmMount(hc.ShmSize, in.ShmPath))
	}
	for _, f := range []struct{ dst, src string }{
		{"/etc/resolv.conf", in.ResolvConfPath},
		{"/etc/hostname", in.HostnamePath},
		{"/etc/hosts", in.HostsPath},
	} {
		if f.src != "" {
			defaults = append(defaults, specs.Mount{Destination: f.dst, Type: "bind", Source: f.src, Options: []string{"rbind", "rprivate"}})
		}
	}
	if hc.Init != nil && *hc.Init && in.InitBinary != "" {
		defaults = append(defaults, specs.Mount{Destination: InitPath, Type: "bind", Source: in.InitBinary, Options: []string{"bind", "ro"}})
	}
	tmpfs, err := tmpfsMounts(hc.Tmpfs)
	if err != nil {
		return nil, err
	}
	user := append(tmpfs, in.Mounts...)
	return mergeMounts(defaults, user), nil
}
