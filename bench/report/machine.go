package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// describeMachine says what the figures were measured on: the machine and
// the version of every system compared, or that it is absent.
func describeMachine(ctx context.Context, commit string) []string {
	if commit == "" {
		commit = output(ctx, "git", "rev-parse", "--short", "HEAD")
	}
	lines := []string{
		"machine: " + osName() + ", kernel " + readTrim("/proc/sys/kernel/osrelease") + ", " + cgroupMode(),
		fmt.Sprintf("CPU: %s, %d cores; memory %s", cpuModel(), runtime.NumCPU(), memTotal()),
		"berth: commit " + commit + ", built with " + runtime.Version(),
	}
	docker := "docker: " + output(ctx, "docker", "--version")
	if v := output(ctx, "docker", "version", "--format", "{{.Server.Version}}"); v != "absent" {
		docker += ", dockerd " + v
	} else {
		docker += ", no dockerd running"
	}
	lines = append(lines, docker,
		"podman: "+output(ctx, "podman", "--version"),
		"buildah: "+output(ctx, "buildah", "--version"),
		"runc: "+output(ctx, "runc", "--version"),
		"crun: "+output(ctx, "crun", "--version"),
		"CNCF registry: "+output(ctx, "docker-registry", "--version"),
	)
	return lines
}

// output is the first line cmd prints, or "absent" when it does not run.
func output(ctx context.Context, name string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).Output()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	if err != nil || line == "" {
		return "absent"
	}
	return line
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// field is the value of the first "key<sep>value" line of path.
func field(path, key, sep string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), sep); ok && strings.TrimSpace(k) == key {
			return strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	return ""
}

func osName() string {
	if v := field("/etc/os-release", "PRETTY_NAME", "="); v != "" {
		return v
	}
	return runtime.GOOS
}

func cpuModel() string {
	if v := field("/proc/cpuinfo", "model name", ":"); v != "" {
		return v
	}
	return runtime.GOARCH
}

func memTotal() string {
	v := field("/proc/meminfo", "MemTotal", ":")
	var kb int64
	if _, err := fmt.Sscanf(v, "%d kB", &kb); err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
}

// cgroupMode names the cgroup layout, which decides whether crun runs.
func cgroupMode() string {
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		return "cgroup v2"
	}
	if _, err := os.Stat("/sys/fs/cgroup/unified"); err == nil {
		return "cgroup v1 hybrid (cgroup2 controllers: " + orNone(readTrim("/sys/fs/cgroup/unified/cgroup.controllers")) + ")"
	}
	return "cgroup v1"
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
