package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

var errNotDevice = errors.New("not a device node")

// MappedDevice is a host device node given with --device: the node to
// create in the container and the cgroup access it gets.
type MappedDevice struct {
	Device specs.LinuxDevice
	Access string
}

// ResolveDevices reads the host nodes of --device mappings. As in Docker,
// the container path defaults to the host path, permissions to "rwm", and
// a directory maps every device node below it.
func ResolveDevices(mappings []container.DeviceMapping) ([]MappedDevice, error) {
	var out []MappedDevice
	for _, m := range mappings {
		access := m.CgroupPermissions
		if access == "" {
			access = "rwm"
		}
		if !validDeviceAccess(access) {
			return nil, fmt.Errorf("device %s: invalid device mode: %s: %w", m.PathOnHost, access, errdefs.ErrInvalidArgument)
		}
		ctr := m.PathInContainer
		if ctr == "" {
			ctr = m.PathOnHost
		}
		devs, err := devicesAt(m.PathOnHost, ctr)
		if err != nil {
			return nil, fmt.Errorf("error gathering device information while adding custom device %q: %w", m.PathOnHost, err)
		}
		for _, d := range devs {
			out = append(out, MappedDevice{Device: d, Access: access})
		}
	}
	return out, nil
}

func devicesAt(hostPath, ctrPath string) ([]specs.LinuxDevice, error) {
	st, err := os.Stat(hostPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("no such file or directory: %w", errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		d, err := deviceAt(hostPath, ctrPath)
		if errors.Is(err, errNotDevice) {
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		return []specs.LinuxDevice{d}, err
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(hostPath, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Type()&fs.ModeDevice == 0 {
			return err
		}
		d, err := deviceAt(p, filepath.Join(ctrPath, strings.TrimPrefix(p, hostPath)))
		if err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	return out, err
}

// validDeviceAccess accepts one to three of r, w, m, each at most once.
func validDeviceAccess(s string) bool {
	if s == "" || len(s) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range s {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// addMappedDevices adds --device nodes and their cgroup rules; a node the
// privileged host list already has at the same path is not repeated.
func addMappedDevices(l *specs.Linux, mapped []MappedDevice) {
	for _, m := range mapped {
		d := m.Device
		exists := false
		for _, have := range l.Devices {
			if have.Path == d.Path {
				exists = true
			}
		}
		if !exists {
			l.Devices = append(l.Devices, d)
		}
		major, minor := d.Major, d.Minor
		l.Resources.Devices = append(l.Resources.Devices, specs.LinuxDeviceCgroup{
			Allow: true, Type: d.Type, Major: &major, Minor: &minor, Access: m.Access,
		})
	}
}
