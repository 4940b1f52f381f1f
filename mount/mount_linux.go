package mount

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// All mounts every m in order onto target: later mounts stack on earlier
// ones. On failure the mounts already made are undone.
func All(mounts []Mount, target string) error {
	for i, m := range mounts {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				// Best effort: the mount error is the one worth reporting.
				_ = Unmount(target)
			}
			return err
		}
	}
	return nil
}

// Mount performs m onto target.
func (m Mount) Mount(target string) error {
	var err error
	switch {
	case m.Type == "overlay":
		err = mountOverlay(m, target)
	case m.IsBind():
		err = mountBind(m, target)
	default:
		err = mountLegacy(m, target)
	}
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
	}
	p := parseOptions(m.Options)
	if p.propagation != 0 {
		if err := unix.Mount("", target, "", p.propagation, ""); err != nil {
			_ = Unmount(target)
			return fmt.Errorf("set propagation of %s: %w", target, err)
		}
	}
	return nil
}

// mountBind binds m.Source onto target, then applies the per-mount flags.
// A bind ignores flags such as MS_RDONLY on the first call, so read-only
// needs the second step; rbind uses mount_setattr so that every submount
// becomes read-only too, not only the top one.
func mountBind(m Mount, target string) error {
	p := parseOptions(m.Options)
	bindFlags := unix.MS_BIND | p.flags&unix.MS_REC
	if err := unix.Mount(m.Source, target, "", bindFlags, ""); err != nil {
		return err
	}
	extra := p.flags &^ (unix.MS_BIND | unix.MS_REC)
	if extra == 0 {
		return nil
	}
	var err error
	if p.flags&unix.MS_REC != 0 {
		err = unix.MountSetattr(unix.AT_FDCWD, target, unix.AT_RECURSIVE|unix.AT_SYMLINK_NOFOLLOW,
			&unix.MountAttr{Attr_set: mountAttrs(extra)})
	} else {
		err = unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|extra, "")
	}
	if err != nil {
		_ = unix.Unmount(target, unix.MNT_DETACH)
		return fmt.Errorf("remount with %v: %w", m.Options, err)
	}
	return nil
}

// mountLegacy is a plain mount(2), whose option data is limited to a page.
func mountLegacy(m Mount, target string) error {
	p := parseOptions(m.Options)
	data := strings.Join(p.data, ",")
	if len(data) >= os.Getpagesize() {
		return fmt.Errorf("mount options are %d bytes, mount(2) takes at most %d: %w",
			len(data), os.Getpagesize()-1, errdefs.ErrInvalidArgument)
	}
	return unix.Mount(m.Source, target, m.Type, p.flags, data)
}

// mountOverlay uses the new mount API: each lower layer is its own
// "lowerdir+" call, so the layer count is bounded by overlayfs (500) and
// not by the page-sized option string of mount(2). Kernels without
// fsopen or "lowerdir+" (before 6.8) fall back to mount(2).
func mountOverlay(m Mount, target string) error {
	p := parseOptions(m.Options)
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if errors.Is(err, unix.ENOSYS) {
		return mountLegacy(m, target)
	}
	if err != nil {
		return fmt.Errorf("fsopen overlay: %w", err)
	}
	defer unix.Close(fd)
	legacy, err := configureOverlay(fd, p.data)
	if legacy {
		return mountLegacy(m, target)
	}
	if err != nil {
		return withFSLog(fd, err)
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		msg := fsLog(fd)
		if msg == "" && errors.Is(err, unix.EINVAL) && legacyParser() {
			return mountLegacy(m, target)
		}
		if msg != "" {
			return fmt.Errorf("create overlay: %w (%s)", err, msg)
		}
		return fmt.Errorf("create overlay: %w", err)
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, int(mountAttrs(p.flags)))
	if err != nil {
		return withFSLog(fd, fmt.Errorf("fsmount: %w", err))
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// legacyParser reports whether overlayfs parses options the pre-6.5 way,
// where fsconfig accepts any key (so "lowerdir+" too) and the superblock
// creation fails later without saying why. The probe is an unknown key,
// which the modern parser rejects. It runs only after such a failure, so
// the common path pays nothing and a real error on a modern kernel is
// reported as it is.
func legacyParser() bool {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	return unix.FsconfigSetString(fd, "berth-probe", "1") == nil
}

// configureOverlay passes the options to the filesystem context. It reports
// legacy when the kernel does not know "lowerdir+".
func configureOverlay(fd int, data []string) (legacy bool, err error) {
	for _, o := range data {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case k == "lowerdir" && hasValue:
			for i, dir := range SplitLowerdir(v) {
				err := unix.FsconfigSetString(fd, "lowerdir+", dir)
				if i == 0 && errors.Is(err, unix.EINVAL) && strings.Contains(fsLog(fd), "lowerdir+") {
					return true, nil
				}
				if err != nil {
					return false, fmt.Errorf("lowerdir %s: %w", dir, err)
				}
			}
		case hasValue:
			if err := unix.FsconfigSetString(fd, k, v); err != nil {
				return false, fmt.Errorf("option %s: %w", k, err)
			}
		default:
			if err := unix.FsconfigSetFlag(fd, k); err != nil {
				return false, fmt.Errorf("option %s: %w", k, err)
			}
		}
	}
	return false, nil
}

// withFSLog appends what the filesystem wrote to the context's log, which
// names the real cause ("overlayfs: workdir and upperdir must be separate
// subtrees") where the errno alone says only EINVAL.
func withFSLog(fd int, err error) error {
	if msg := fsLog(fd); msg != "" {
		return fmt.Errorf("%w (%s)", err, msg)
	}
	return err
}

func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	return strings.Join(msgs, "; ")
}

func mountAttrs(flags uintptr) uint64 {
	var a uint64
	for _, f := range []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
		{unix.MS_NODIRATIME, unix.MOUNT_ATTR_NODIRATIME},
		{unix.MS_STRICTATIME, unix.MOUNT_ATTR_STRICTATIME},
	} {
		if flags&f.ms != 0 {
			a |= f.attr
		}
	}
	return a
}
