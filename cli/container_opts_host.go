package cli

import (
	"encoding/csv"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// hostConfig builds the HostConfig from the flags.
func (o *createOptions) hostConfig(f *pflag.FlagSet) (*container.HostConfig, error) {
	h := &container.HostConfig{
		AutoRemove: o.autoRemove, Privileged: o.privileged, ReadonlyRootfs: o.readOnly, PublishAllPorts: o.publishAll,
		CapAdd: o.capAdd, CapDrop: o.capDrop, GroupAdd: o.groupAdd,
		ExtraHosts: o.addHosts, VolumesFrom: o.volumesFrom, VolumeDriver: o.volumeDriver, Runtime: o.runtime,
		NetworkMode: container.NetworkMode(o.networkMode()), IpcMode: container.IpcMode(o.ipc), PidMode: container.PidMode(o.pid),
		UTSMode: container.UTSMode(o.uts), UsernsMode: container.UsernsMode(o.userns), CgroupnsMode: container.CgroupnsMode(o.cgroupns),
		ShmSize: o.shmSize, OomScoreAdj: o.oomScoreAdj, ContainerIDFile: o.cidfile,
		LogConfig: container.LogConfig{Type: o.logDriver, Config: map[string]string{}},
		// docker sends these as empty lists rather than null.
		DNS: []netip.Addr{}, DNSOptions: nonNil(o.dnsOpts), DNSSearch: nonNil(o.dnsSearch), PortBindings: network.PortMap{},
	}
	if h.NetworkMode == "" {
		h.NetworkMode = "default"
	}
	if f.Changed("init") {
		h.Init = &o.init
	}
	for _, d := range o.dns {
		h.DNS = append(h.DNS, netip.MustParseAddr(d))
	}
	var err error
	if h.RestartPolicy, err = parseRestart(o.restart); err != nil {
		return nil, err
	}
	if h.SecurityOpt, err = parseSecurityOpts(o.securityOpts); err != nil {
		return nil, err
	}
	if err := o.maps(h); err != nil {
		return nil, err
	}
	for _, m := range o.mounts {
		mnt, _ := parseMount(m) // checked when the flag was parsed
		h.Mounts = append(h.Mounts, mnt)
	}
	if err := o.resources(f, &h.Resources); err != nil {
		return nil, err
	}
	return h, nil
}

// maps fills the key=value options: tmpfs, sysctls, annotations, log and
// storage options.
func (o *createOptions) maps(h *container.HostConfig) error {
	var err error
	if len(o.tmpfs) > 0 {
		h.Tmpfs = map[string]string{}
		for _, t := range o.tmpfs {
			dst, opts, _ := strings.Cut(t, ":")
			if !strings.HasPrefix(dst, "/") {
				return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", dst)
			}
			h.Tmpfs[dst] = opts
		}
	}
	if h.Sysctls, err = keyValues("sysctl", o.sysctls, true); err != nil {
		return err
	}
	if h.Annotations, err = keyValues("annotation", o.annotations, true); err != nil {
		return err
	}
	if h.StorageOpt, err = keyValues("storage-opt", o.storageOpts, true); err != nil {
		return err
	}
	if len(o.logOpts) > 0 {
		if h.LogConfig.Config, err = keyValues("log-opt", o.logOpts, true); err != nil {
			return err
		}
	}
	return nil
}

func (o *createOptions) resources(f *pflag.FlagSet, r *container.Resources) error {
	r.Memory, r.MemorySwap, r.MemoryReservation = o.memory, o.memorySwap, o.memoryReservation
	r.NanoCPUs, r.CPUShares, r.CPUPeriod, r.CPUQuota = o.nanoCPUs, o.cpuShares, o.cpuPeriod, o.cpuQuota
	r.CpusetCpus, r.CpusetMems, r.CgroupParent, r.BlkioWeight = o.cpusetCpus, o.cpusetMems, o.cgroupParent, o.blkioWeight
	r.DeviceCgroupRules = o.deviceCgroup
	if o.memorySwappiness < -1 || o.memorySwappiness > 100 {
		return fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", o.memorySwappiness)
	}
	// As docker: always sent, -1 and 0 meaning "not set" to the daemon.
	r.MemorySwappiness, r.PidsLimit, r.OomKillDisable = &o.memorySwappiness, &o.pidsLimit, &o.oomKillDisable
	r.Devices, r.Ulimits = []container.DeviceMapping{}, []*container.Ulimit{}
	r.BlkioWeightDevice = []*blkiodev.WeightDevice{}
	r.BlkioDeviceReadBps, r.BlkioDeviceWriteBps = []*blkiodev.ThrottleDevice{}, []*blkiodev.ThrottleDevice{}
	r.BlkioDeviceReadIOps, r.BlkioDeviceWriteIOps = []*blkiodev.ThrottleDevice{}, []*blkiodev.ThrottleDevice{}
	if o.nanoCPUs != 0 && (o.cpuPeriod != 0 || o.cpuQuota != 0) {
		return fmt.Errorf("conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	ulimits, err := parseUlimits(o.ulimits)
	if err != nil {
		return err
	}
	r.Ulimits = append(r.Ulimits, ulimits...)
	for _, d := range o.devices {
		dm, err := parseDevice(d)
		if err != nil {
			return err
		}
		r.Devices = append(r.Devices, dm)
	}
	return nil
}

// parsePorts reads --expose and -p ([ip:][hostPort:]containerPort[/proto],
// with ranges) into the exposed set and the bindings.
func parsePorts(expose, publish []string) (network.PortSet, network.PortMap, error) {
	exposed := network.PortSet{}
	bindings := network.PortMap{}
	for _, e := range expose {
		proto := "tcp"
		if p, pr, ok := strings.Cut(e, "/"); ok {
			e, proto = p, pr
		}
		start, end, err := portRange(e)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid range format for --expose: %s, error: %w", e, err)
		}
		for n := start; n <= end; n++ {
			p, _ := network.PortFrom(n, network.IPProtocol(proto))
			exposed[p] = struct{}{}
		}
	}
	for _, spec := range publish {
		if err := addBinding(spec, exposed, bindings); err != nil {
			return nil, nil, err
		}
	}
	if len(exposed) == 0 {
		exposed = nil
	}
	return exposed, bindings, nil
}

// splitPublish cuts -p's [ip:][hostPort:]containerPort[/proto]; an IPv6
// address is written in brackets.
func splitPublish(spec string) (ip, hostPort, ctrPort, proto string, err error) {
	rest, proto := spec, "tcp"
	if i := strings.LastIndex(spec, "/"); i >= 0 {
		rest, proto = spec[:i], strings.ToLower(spec[i+1:])
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]")
		if end < 0 {
			return "", "", "", "", fmt.Errorf("invalid IP address: %s", rest)
		}
		ip, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 1:
		ctrPort = parts[0]
	case len(parts) == 2:
		hostPort, ctrPort = parts[0], parts[1]
	case len(parts) == 3 && ip == "":
		ip, hostPort, ctrPort = parts[0], parts[1], parts[2]
	default:
		return "", "", "", "", fmt.Errorf("invalid publish opts format (should be name=value but no '=' found): %s", spec)
	}
	return ip, hostPort, ctrPort, proto, nil
}

func addBinding(spec string, exposed network.PortSet, bindings network.PortMap) error {
	ip, hostPort, ctrPort, proto, err := splitPublish(spec)
	if err != nil {
		return err
	}
	if ip != "" {
		if _, err := netip.ParseAddr(ip); err != nil {
			return fmt.Errorf("invalid IP address: %s", ip)
		}
	}
	start, end, err := portRange(ctrPort)
	if err != nil {
		return fmt.Errorf("invalid containerPort: %s", ctrPort)
	}
	hStart, hEnd := uint16(0), uint16(0)
	if hostPort != "" {
		if hStart, hEnd, err = portRange(hostPort); err != nil {
			return fmt.Errorf("invalid hostPort: %s", hostPort)
		}
		// A host range for one container port is the range the daemon
		// picks a free port from; otherwise the two ranges pair up.
		if hEnd-hStart != end-start && end != start {
			return fmt.Errorf("invalid ranges specified for container and host Ports: %s and %s", ctrPort, hostPort)
		}
	}
	var addr netip.Addr
	if ip != "" {
		addr = netip.MustParseAddr(ip)
	}
	for i := uint16(0); i <= end-start; i++ {
		p, ok := network.PortFrom(start+i, network.IPProtocol(proto))
		if !ok {
			return fmt.Errorf("invalid proto: %s", proto)
		}
		exposed[p] = struct{}{}
		b := network.PortBinding{HostIP: addr}
		switch {
		case hostPort == "":
		case hStart == hEnd:
			b.HostPort = strconv.Itoa(int(hStart))
		case end == start:
			b.HostPort = fmt.Sprintf("%d-%d", hStart, hEnd)
		default:
			b.HostPort = strconv.Itoa(int(hStart + i))
		}
		bindings[p] = append(bindings[p], b)
	}
	return nil
}

// portRange reads "80" or "8000-8010".
func portRange(s string) (uint16, uint16, error) {
	lo, hi, isRange := strings.Cut(s, "-")
	start, err := strconv.ParseUint(lo, 10, 16)
	if err != nil || start == 0 {
		return 0, 0, fmt.Errorf("invalid port %q", s)
	}
	end := start
	if isRange {
		if end, err = strconv.ParseUint(hi, 10, 16); err != nil || end < start {
			return 0, 0, fmt.Errorf("invalid port range %q", s)
		}
	}
	return uint16(start), uint16(end), nil
}

// parseMount reads --mount's CSV: type, source, target, readonly and the
// per-type options.
func parseMount(s string) (mount.Mount, error) {
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return mount.Mount{}, err
	}
	m := mount.Mount{Type: mount.TypeVolume}
	for _, field := range fields {
		key, val, hasVal := strings.Cut(field, "=")
		key = strings.ToLower(key)
		if !hasVal && key != "readonly" && key != "ro" && key != "volume-nocopy" {
			return m, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
		}
		if err := setMountField(&m, key, val, hasVal); err != nil {
			return m, err
		}
	}
	if m.Target == "" {
		return m, fmt.Errorf("target is required")
	}
	if m.Type == mount.TypeBind && m.Source == "" {
		return m, fmt.Errorf("source is required when specifying bind mounts")
	}
	return m, nil
}

func setMountField(m *mount.Mount, key, val string, hasVal bool) error {
	flag := func() (bool, error) {
		if !hasVal {
			return true, nil
		}
		return strconv.ParseBool(val)
	}
	var err error
	switch key {
	case "type":
		m.Type = mount.Type(strings.ToLower(val))
	case "source", "src":
		m.Source = absoluteMountSource(val)
	case "target", "destination", "dst":
		m.Target = val
	case "readonly", "ro":
		m.ReadOnly, err = flag()
	case "consistency":
		m.Consistency = mount.Consistency(val)
	case "bind-propagation":
		m.BindOptions = orNew(m.BindOptions)
		m.BindOptions.Propagation = mount.Propagation(val)
	case "bind-create-host-path":
		m.BindOptions = orNew(m.BindOptions)
		m.BindOptions.CreateMountpoint, err = flag()
	case "volume-nocopy":
		m.VolumeOptions = volumeOptions(m.VolumeOptions)
		m.VolumeOptions.NoCopy, err = flag()
	case "volume-subpath":
		m.VolumeOptions = volumeOptions(m.VolumeOptions)
		m.VolumeOptions.Subpath = val
	case "volume-driver", "volume-label", "volume-opt":
		m.VolumeOptions = volumeOptions(m.VolumeOptions)
		setVolumeField(m.VolumeOptions, key, val)
	case "tmpfs-size":
		m.TmpfsOptions = orNew(m.TmpfsOptions)
		m.TmpfsOptions.SizeBytes, err = units.RAMInBytes(val)
	case "tmpfs-mode":
		m.TmpfsOptions = orNew(m.TmpfsOptions)
		var mode uint64
		mode, err = strconv.ParseUint(val, 8, 32)
		m.TmpfsOptions.Mode = os.FileMode(mode)
	default:
		return fmt.Errorf("unexpected key '%s' in '%s'", key, key+"="+val)
	}
	if err != nil {
		return fmt.Errorf("invalid value for %s: %s", key, val)
	}
	return nil
}

func orNew[T any](p *T) *T {
	if p == nil {
		return new(T)
	}
	return p
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// volumeOptions always carries a driver config, empty unless set, as the
// docker CLI sends it.
func volumeOptions(v *mount.VolumeOptions) *mount.VolumeOptions {
	v = orNew(v)
	if v.DriverConfig == nil {
		v.DriverConfig = &mount.Driver{}
	}
	return v
}
