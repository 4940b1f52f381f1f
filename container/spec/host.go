package spec

import (
	"bufio"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// HostLastCap reads the highest capability number the kernel knows.
func HostLastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("cap_last_cap: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("cap_last_cap: %w", err)
	}
	return n, nil
}

// HostBoundingCaps lists the capabilities in the engine's own bounding
// set (CapBnd of /proc/self/status): a runtime it starts can grant no
// others, so a privileged container gets these.
func HostBoundingCaps() ([]string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "CapBnd:")
		if !ok {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return nil, fmt.Errorf("CapBnd %q: %w", v, err)
		}
		return capsFromMask(mask), nil
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("/proc/self/status: no CapBnd line")
}

func capsFromMask(mask uint64) []string {
	out := []string{}
	for i, c := range knownCapabilities {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, c)
		}
	}
	return out
}

// HostDevices lists the device nodes under dir (normally /dev) for
// --privileged, skipping the pseudo-terminal and console nodes a container
// gets its own of.
func HostDevices(dir string) ([]specs.LinuxDevice, error) {
	var out []specs.LinuxDevice
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsPermission(err) || os.IsNotExist(err) {
				return nil
			}
			return err
		}
		rel := strings.TrimPrefix(p, dir)
		if d.IsDir() && (rel == "/pts" || rel == "/shm" || rel == "/mqueue" || rel == "/.lxc" || rel == "/.udev") {
			return fs.SkipDir
		}
		if d.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 || rel == "/console" || rel == "/ptmx" {
			return nil
		}
		// A node that vanished or cannot be read while walking is skipped:
		// /dev changes under us as devices come and go.
		if dev, err := deviceAt(p, filepath.Join("/dev", rel)); err == nil {
			out = append(out, dev)
		}
		return nil
	})
	return out, err
}

// deviceAt describes the node at hostPath as one to create at ctrPath,
// with the host's type, numbers, mode and owner.
func deviceAt(hostPath, ctrPath string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(hostPath, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, errNotDevice
	}
	mode := os.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{
		Path: ctrPath, Type: typ,
		Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}
