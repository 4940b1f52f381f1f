// Package btrfstest gives tests and benchmarks a filesystem of their own:
// an image file, a loop device and a mount, all removed when the test ends,
// whether it passed or not. The btrfs snapshotter's tests, the storage
// benchmark and the integration tests use it to get a btrfs data root on a
// machine whose disks are ext4.
package btrfstest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Mount makes a btrfs filesystem of size bytes (a sparse image: it uses
// what is written) and returns where it is mounted. It skips the test when
// not root or when the kernel or btrfs-progs lack btrfs.
func Mount(tb testing.TB, size int64) string {
	tb.Helper()
	return MountFS(tb, "btrfs", size)
}

// MountFS is Mount for any filesystem type with a mkfs.<fstype> tool,
// such as ext4 or xfs, so that drivers can be compared on equal footing.
func MountFS(tb testing.TB, fstype string, size int64) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("a loop-mounted filesystem needs root")
	}
	for _, tool := range []string{"mkfs." + fstype, "losetup"} {
		if _, err := exec.LookPath(tool); err != nil {
			tb.Skipf("%s is not installed: %v", tool, err)
		}
	}
	if !kernelHas(fstype) {
		tb.Skipf("the kernel has no %s support (not in /proc/filesystems, modprobe failed)", fstype)
	}
	dir := tb.TempDir()
	img := filepath.Join(dir, fstype+".img")
	if err := makeImage(img, fstype, size); err != nil {
		tb.Fatal(err)
	}
	dev, err := run("losetup", "--find", "--show", img)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if _, err := run("losetup", "--detach", dev); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	mnt := filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := unix.Mount(dev, mnt, fstype, 0, ""); err != nil {
		tb.Fatalf("mount %s (%s) on %s: %v", dev, fstype, mnt, err)
	}
	tb.Cleanup(func() {
		if err := unmount(mnt); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return mnt
}

func makeImage(img, fstype string, size int64) error {
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", img, err)
	}
	args := []string{"-q", img}
	switch fstype {
	case "btrfs", "xfs":
		args = []string{"-q", "-f", img}
	case "ext4":
		args = []string{"-q", "-F", img}
	}
	_, err = run("mkfs."+fstype, args...)
	return err
}

// unmount retries while the filesystem is busy: a process that a test
// started may take a moment to close its files after being killed.
func unmount(mnt string) error {
	var err error
	for range 50 {
		if err = unix.Unmount(mnt, 0); !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	return nil
}

func kernelHas(fstype string) bool {
	has := func() bool {
		b, err := os.ReadFile("/proc/filesystems")
		if err != nil {
			return false
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == fstype {
				return true
			}
		}
		return false
	}
	if has() {
		return true
	}
	_, _ = run("modprobe", fstype)
	return has()
}

func run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return strings.TrimSpace(string(out)), nil
}
