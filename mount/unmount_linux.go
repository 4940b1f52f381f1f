package mount

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// Unmount removes the topmost mount at target. It does not follow a
// symlink at target, so a container cannot redirect it elsewhere.
func Unmount(target string) error {
	if err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW); err != nil {
		if errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("unmount %s: nothing mounted: %w", target, errdefs.ErrNotFound)
		}
		return fmt.Errorf("unmount %s: %w", target, err)
	}
	return nil
}

// UnmountAll unmounts target until nothing is mounted there, including
// mounts below it (an rbind brings its submounts along), deepest first. A
// target that does not exist or has no mount is not an error.
func UnmountAll(target string) error {
	// mountinfo lists canonical paths; resolve the parent (not target
	// itself, which is never followed) so that a path through a symlinked
	// directory still matches.
	target = filepath.Clean(target)
	if dir, err := filepath.EvalSymlinks(filepath.Dir(target)); err == nil {
		target = filepath.Join(dir, filepath.Base(target))
	}
	for {
		points, err := mountsUnder(target)
		if err != nil {
			return err
		}
		if len(points) == 0 {
			return nil
		}
		progress := false
		for _, p := range points {
			err := unix.Unmount(p, unix.UMOUNT_NOFOLLOW)
			switch {
			case err == nil:
				progress = true
			case !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT):
				return fmt.Errorf("unmount %s: %w", p, err)
			}
		}
		// A mount whose path no longer resolves to it (its directory was
		// deleted or renamed) would otherwise be retried forever.
		if !progress {
			return fmt.Errorf("unmount %s: %d mounts listed but not reachable by path: %w",
				target, len(points), errdefs.ErrFailedPrecondition)
		}
	}
}

// mountsUnder lists the mount points at or below dir, deepest first, one
// entry per stacked mount.
func mountsUnder(dir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var points []string
	for line := range strings.SplitSeq(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 5 {
			continue
		}
		p := unescapeMountinfo(fields[4])
		if p == dir || strings.HasPrefix(p, dir+"/") || dir == "/" {
			points = append(points, p)
		}
	}
	// Later lines are newer mounts; deeper paths must go before their parents.
	slices.Reverse(points)
	slices.SortStableFunc(points, func(a, b string) int { return len(b) - len(a) })
	return points, nil
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) that the
// kernel writes for whitespace and backslashes in mountinfo paths.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// WithTempMount mounts mounts on a fresh temporary directory, calls f with
// its path, then unmounts and removes the directory, also when f fails.
func WithTempMount(ctx context.Context, mounts []Mount, f func(root string) error) (err error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "berth-mount-")
	if err != nil {
		return fmt.Errorf("temporary mount point: %w", err)
	}
	defer func() {
		if uerr := UnmountAll(dir); uerr != nil {
			// Never remove a directory that still has a filesystem on it:
			// RemoveAll would delete the layer's contents.
			err = errors.Join(err, uerr)
			return
		}
		err = errors.Join(err, os.Remove(dir))
	}()
	if err := All(mounts, dir); err != nil {
		return err
	}
	return f(dir)
}
