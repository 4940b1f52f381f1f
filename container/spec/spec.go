// Package spec turns a Docker container configuration into an OCI runtime
// spec (config.json) with Docker's security defaults. Generate is a pure
// function: everything it needs from the host (the resolved user, rlimits,
// namespace paths, the init binary, cgroup version) is passed in Input, and
// the small helpers that read the host (ResolveUser, ResolveDevices,
// HostRlimits, HostLastCap, HostBoundingCaps, HostDevices) are separate, so
// specs are golden-tested (testdata/*.json, `go test -update` rewrites them).
//
// The container service is expected to use it like this:
//
//	merged, err := spec.Merge(req.Config, img.Config)        // at create; store merged
//	user, err := spec.ResolveUser(rootfs, merged.User, hc.GroupAdd)
//	devs, err := spec.ResolveDevices(hc.Devices)
//	s, err := spec.Generate(spec.Input{ID: id, Config: merged, HostConfig: hc,
//		Image: img.Config, Rootfs: rootfs, User: user, Devices: devs, ...})
//
// What is deliberately not in the spec:
//   - the stop signal and timeout: the engine sends them, the runtime never
//     sees them;
//   - the working directory's creation: the caller creates Config.WorkingDir
//     in the rootfs (owned by the user, as Docker does) before starting;
//   - the hosts/hostname/resolv.conf contents: the caller writes them and
//     passes their paths to bind;
//   - labels: they are engine metadata (inspect, filters), not runtime
//     annotations; HostConfig.Annotations are passed through instead.
//
// On a cgroup v1 or hybrid host (like the one these tests run on) there is
// no cgroup namespace by default and CgroupsPath names one directory per
// v1 controller; on v2 a private cgroup namespace is the default.
package spec

import (
	"fmt"
	"maps"
	"path"
	"runtime"
	"slices"

	"berth/errdefs"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// InitPath is where --init's binary appears inside the container.
const InitPath = "/sbin/docker-init"

// DefaultCgroupParent is the cgroup parent when --cgroup-parent is empty.
const DefaultCgroupParent = "/berth"

// Input is everything Generate needs. Config and HostConfig are the Docker
// wire types as the create request (or the stored record) has them.
type Input struct {
	ID         string
	Config     *container.Config
	HostConfig *container.HostConfig
	Image      dockerspec.DockerOCIImageConfig

	// Rootfs is the mounted root filesystem (the bundle's root.path).
	Rootfs string
	// User is the resolved Config.User (after Merge), see ResolveUser.
	User User
	// Hostname is the container's hostname (Config.Hostname, or the short
	// ID the caller chose); it also becomes $HOSTNAME.
	Hostname string
	// Files written by the caller and bind-mounted over /etc; empty skips.
	HostsPath, HostnamePath, ResolvConfPath string
	// NetNSPath is a prepared network namespace to join. Empty means a new,
	// empty one (only lo), except with --network host, which shares the
	// host's.
	NetNSPath string
	// NamespacePaths are the namespaces of other containers to join for
	// --pid/--ipc container:<id>.
	NamespacePaths map[specs.LinuxNamespaceType]string
	// CgroupsPath overrides the default <cgroup-parent or /berth>/<id>
	// (e.g. "system.slice:berth:<id>" for a systemd-driven runtime).
	CgroupsPath string
	// ShmPath, when set, is a host directory bound at /dev/shm instead of a
	// private tmpfs (so --ipc shareable can be joined).
	ShmPath string
	// HostRlimits are the host's hard limits by --ulimit name (HostRlimits).
	HostRlimits map[string]uint64
	// InitBinary is the host path of the --init binary (tini, or berth).
	InitBinary string
	CgroupV2   bool
	// Arch is the GOARCH whose seccomp architectures to allow; empty means
	// the running one.
	Arch string
	// HostCPUs bounds --cpus; 0 skips the check.
	HostCPUs int
	// BlkioDevices are the device numbers of the paths the blkio options
	// name, see BlkioDeviceNumbers.
	BlkioDevices map[string]DeviceNumber
	// SeccompProfile is the daemon's default profile in Docker's format
	// (--seccomp-profile); nil means the built-in DefaultSeccomp.
	SeccompProfile []byte
	// KernelRelease (uname -r) decides profile rules with a minKernel.
	KernelRelease string
	// NoSwapLimit says the kernel has no swap accounting (v1 without
	// memory.memsw.*): swap settings are then dropped, as Docker does,
	// instead of making the runtime fail; warning the user is the caller's.
	NoSwapLimit bool
	// CapLastCap and HostBounding bound the "all capabilities" set (see
	// HostLastCap, HostBoundingCaps); zero values mean every known one.
	CapLastCap   int
	HostBounding []string
	// HostDevices are given to --privileged containers (see HostDevices).
	HostDevices []specs.LinuxDevice
	// Devices are the --device nodes, see ResolveDevices.
	Devices []MappedDevice
	// Mounts are resolved binds and volumes (-v, --mount), laid over the
	// defaults.
	Mounts []specs.Mount
}

// Generate builds the runtime spec for in.
func Generate(in Input) (*specs.Spec, error) {
	if in.Config == nil || in.HostConfig == nil {
		return nil, fmt.Errorf("container %s: config and host config are required: %w", in.ID, errdefs.ErrInvalidArgument)
	}
	cfg, err := Merge(in.Config, in.Image)
	if err != nil {
		return nil, err
	}
	hc := in.HostConfig
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	caps, err := Capabilities(hc.CapAdd, hc.CapDrop, hc.Privileged, in.CapLastCap, in.HostBounding)
	if err != nil {
		return nil, err
	}
	proc, err := process(in, cfg, caps, sec)
	if err != nil {
		return nil, err
	}
	linux, err := linuxSection(in, caps, sec)
	if err != nil {
		return nil, err
	}
	mounts, err := mountList(in)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:     specs.Version,
		Process:     proc,
		Root:        &specs.Root{Path: in.Rootfs, Readonly: hc.ReadonlyRootfs},
		Mounts:      mounts,
		Linux:       linux,
		Annotations: maps.Clone(hc.Annotations),
	}
	if !hc.UTSMode.IsHost() {
		s.Hostname = in.Hostname
		s.Domainname = cfg.Domainname
	}
	return s, nil
}

func process(in Input, cfg *container.Config, caps []string, sec securityOpts) (*specs.Process, error) {
	hc := in.HostConfig
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	rl, err := rlimits(hc.Ulimits, in.HostRlimits)
	if err != nil {
		return nil, err
	}
	args := commandArgs(cfg)
	if hc.Init != nil && *hc.Init {
		if in.InitBinary == "" {
			return nil, fmt.Errorf("--init: no init binary available: %w", errdefs.ErrFailedPrecondition)
		}
		args = append([]string{InitPath, "--"}, args...)
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	oom := hc.OomScoreAdj
	p := &specs.Process{
		Terminal: cfg.Tty,
		User: specs.User{
			UID: in.User.UID, GID: in.User.GID,
			AdditionalGids: slices.Clone(in.User.AdditionalGids), Umask: hc.Umask,
		},
		Args:            args,
		Env:             processEnv(cfg.Env, in.Hostname, cfg.Tty, homeOf(in.User)),
		Cwd:             path.Clean("/" + cwd),
		Capabilities:    processCaps(caps, in.User.UID),
		Rlimits:         rl,
		NoNewPrivileges: sec.noNewPrivileges,
		OOMScoreAdj:     &oom,
	}
	if cfg.Tty && hc.ConsoleSize != [2]uint{} {
		p.ConsoleSize = &specs.Box{Height: hc.ConsoleSize[0], Width: hc.ConsoleSize[1]}
	}
	if !hc.Privileged && sec.apparmor != "" && sec.apparmor != "unconfined" {
		p.ApparmorProfile = sec.apparmor
	}
	return p, nil
}

// processCaps gives root the whole set; any other user gets only the
// bounding set, as execve of a non-setuid binary would leave them.
func processCaps(caps []string, uid uint32) *specs.LinuxCapabilities {
	if uid != 0 {
		return &specs.LinuxCapabilities{Bounding: slices.Clone(caps)}
	}
	return &specs.LinuxCapabilities{Bounding: slices.Clone(caps), Effective: slices.Clone(caps), Permitted: slices.Clone(caps)}
}

func linuxSection(in Input, caps []string, sec securityOpts) (*specs.Linux, error) {
	hc := in.HostConfig
	res, err := resources(hc.Resources, in.HostCPUs, in.NoSwapLimit, in.BlkioDevices)
	if err != nil {
		return nil, err
	}
	ns, err := namespaces(in)
	if err != nil {
		return nil, err
	}
	sys, err := sysctls(hc.Sysctls, hc)
	if err != nil {
		return nil, err
	}
	l := &specs.Linux{
		Namespaces:  ns,
		Resources:   res,
		CgroupsPath: cgroupsPath(in),
		Sysctl:      sys,
	}
	if hc.Privileged {
		l.Devices = slices.Clone(in.HostDevices)
		res.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		addMappedDevices(l, in.Devices)
		return l, nil
	}
	l.Devices = defaultDevices()
	res.Devices = defaultDeviceRules()
	for _, r := range hc.DeviceCgroupRules {
		rule, err := ParseDeviceCgroupRule(r)
		if err != nil {
			return nil, err
		}
		res.Devices = append(res.Devices, rule)
	}
	addMappedDevices(l, in.Devices)
	if !sec.systemPathsOpen {
		// Cloned so that a caller editing the spec cannot change the
		// defaults of every later container.
		l.MaskedPaths = slices.Clone(defaultMaskedPaths)
		if hc.MaskedPaths != nil {
			l.MaskedPaths = slices.Clone(hc.MaskedPaths)
		}
		l.ReadonlyPaths = slices.Clone(defaultReadonlyPaths)
		if hc.ReadonlyPaths != nil {
			l.ReadonlyPaths = slices.Clone(hc.ReadonlyPaths)
		}
	}
	sc, err := seccompFor(in, caps, sec)
	if err != nil {
		return nil, err
	}
	l.Seccomp = sc
	return l, nil
}

// seccompFor picks the profile: none when unconfined, else the
// container's own, the daemon's, or the built-in default.
func seccompFor(in Input, caps []string, sec securityOpts) (*specs.LinuxSeccomp, error) {
	if sec.seccompUnconfined {
		return nil, nil
	}
	arch := in.Arch
	if arch == "" {
		arch = runtime.GOARCH
	}
	switch {
	case sec.seccompProfile != "":
		return SeccompFromProfile([]byte(sec.seccompProfile), arch, caps, in.KernelRelease)
	case in.SeccompProfile != nil:
		return SeccompFromProfile(in.SeccompProfile, arch, caps, in.KernelRelease)
	}
	return DefaultSeccomp(arch, caps), nil
}

func cgroupsPath(in Input) string {
	if in.CgroupsPath != "" {
		return in.CgroupsPath
	}
	parent := in.HostConfig.CgroupParent
	if parent == "" {
		parent = DefaultCgroupParent
	}
	return path.Join("/", parent, in.ID)
}
