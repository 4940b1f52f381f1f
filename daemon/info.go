package daemon

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"berth/api"
	"berth/container"
	"berth/container/spec"
	"berth/image"
	"berth/snapshot"
	"berth/version"

	containertypes "github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"
)

func kernelVersion() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func versionInfo(ctx context.Context, cfg Config) api.VersionInfo {
	v := api.VersionInfo{
		Version: version.Version, GitCommit: version.GitCommit, BuildTime: version.BuildTime,
		GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, KernelVersion: kernelVersion(),
	}
	v.Components = append(v.Components, system.ComponentVersion{
		Name: "Engine", Version: version.Version,
		Details: map[string]string{"ApiVersion": "1.51", "MinAPIVersion": "1.24", "GitCommit": version.GitCommit, "GoVersion": runtime.Version(), "Os": runtime.GOOS, "Arch": runtime.GOARCH, "KernelVersion": kernelVersion()},
	})
	for _, name := range []string{"runc", "crun"} {
		if ver, commit := runtimeVersion(ctx, name); ver != "" {
			v.Components = append(v.Components, system.ComponentVersion{Name: name, Version: ver, Details: map[string]string{"GitCommit": commit}})
		}
	}
	return v
}

// runtimeVersion asks an OCI runtime for its version ("runc version 1.1.5").
func runtimeVersion(ctx context.Context, name string) (ver, commit string) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", ""
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--version").Output()
	if err != nil {
		return "", ""
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "version" && ver == "":
			ver = f[2]
		case len(f) >= 2 && f[0] == "commit:":
			commit = f[1]
		}
	}
	return ver, commit
}

// Info answers GET /info.
func (d *Daemon) Info(ctx context.Context) (system.Info, error) {
	images, err := d.images.Images(ctx, image.ListOptions{All: true})
	if err != nil {
		return system.Info{}, err
	}
	host, _ := os.Hostname()
	cg := spec.ReadCgroupCaps(spec.CgroupRoot)
	info := system.Info{
		ID: d.id, Images: len(images), Driver: d.cfg.StorageDriver,
		DriverStatus: driverStatus(ctx, d.sn), Debug: d.cfg.Debug,
		NFd: countFDs(), NGoroutines: runtime.NumGoroutine(), SystemTime: time.Now().Format(time.RFC3339Nano),
		LoggingDriver: d.cfg.LogDriver, CgroupDriver: "cgroupfs", CgroupVersion: cg.Version(),
		KernelVersion: kernelVersion(), OperatingSystem: osName(), OSType: runtime.GOOS,
		Architecture: archName(), NCPU: runtime.NumCPU(), MemTotal: memTotal(),
		DockerRootDir: d.cfg.DataRoot, Name: host, Labels: nonNilStrings(d.cfg.Labels),
		ServerVersion: version.Version, DefaultRuntime: d.cfg.DefaultRuntime,
		LiveRestoreEnabled: d.cfg.LiveRestore, Runtimes: d.runtimes(),
		SecurityOptions:    []string{"name=seccomp,profile=builtin"},
		IndexServerAddress: "https://index.docker.io/v1/",
		Warnings:           append([]string{}, cg.InfoWarnings()...),
		MemoryLimit:        cg.MemoryLimit, SwapLimit: cg.SwapLimit, CPUCfsPeriod: cg.CPUCfs, CPUCfsQuota: cg.CPUCfs,
		CPUShares: cg.CPUShares, CPUSet: cg.Cpuset, PidsLimit: cg.PidsLimit, OomKillDisable: cg.OomKillDisable,
	}
	if cg.V2 {
		// Containers get a private cgroup namespace by default on v2.
		info.SecurityOptions = append(info.SecurityOptions, "name=cgroupns")
	}
	info.Swarm.LocalNodeState = "inactive"
	ctrs, err := d.ctrs.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return system.Info{}, err
	}
	for _, c := range ctrs {
		info.Containers++
		switch c.State {
		case "running", "restarting":
			info.ContainersRunning++
		case "paused":
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
	}
	return info, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (d *Daemon) runtimes() map[string]system.RuntimeWithStatus {
	out := map[string]system.RuntimeWithStatus{}
	for _, name := range []string{"runc", "crun"} {
		if p, err := exec.LookPath(name); err == nil {
			out[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: p}}
		}
	}
	for name, r := range d.cfg.Runtimes {
		out[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: r.Path, Args: r.RuntimeArgs}}
	}
	return out
}

func driverStatus(ctx context.Context, sn snapshot.Snapshotter) [][2]string {
	if ds, ok := sn.(snapshot.Describer); ok {
		return ds.Status(ctx).Details
	}
	return [][2]string{}
}

func countFDs() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(ents)
}

func osName() string {
	f, err := os.Open("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

func archName() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return runtime.GOARCH
	}
	return unix.ByteSliceToString(u.Machine[:])
}

func memTotal() int64 {
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// DiskUsage answers GET /system/df.
func (d *Daemon) DiskUsage(ctx context.Context) (system.DiskUsage, error) {
	iu, err := d.images.DiskUsage(ctx)
	if err != nil {
		return system.DiskUsage{}, err
	}
	cu, err := d.containerUsage(ctx)
	if err != nil {
		return system.DiskUsage{}, err
	}
	vu, err := d.vols.DiskUsage(ctx)
	if err != nil {
		return system.DiskUsage{}, err
	}
	return system.DiskUsage{ImageUsage: iu, ContainerUsage: cu, VolumeUsage: vu}, nil
}

// containerUsage is the containers' share of `system df`: their writable
// layers.
func (d *Daemon) containerUsage(ctx context.Context) (*containertypes.DiskUsage, error) {
	list, err := d.ctrs.ContainerList(ctx, container.ListOptions{All: true, Size: true})
	if err != nil {
		return nil, err
	}
	du := &containertypes.DiskUsage{Items: list, TotalCount: int64(len(list))}
	for _, c := range list {
		du.TotalSize += c.SizeRw
		if c.State == "running" || c.State == "paused" || c.State == "restarting" {
			du.ActiveCount++
		} else {
			du.Reclaimable += c.SizeRw
		}
	}
	return du, nil
}
