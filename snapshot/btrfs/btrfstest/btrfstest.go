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

// Option changes how MountFS makes the filesystem.
type Option func(*config)

type config struct{ preallocate bool }

// Preallocated makes the image file take its whole size on the host disk
// up front. Benchmarks want it: writes into a sparse image also pay for
// the host filesystem allocating the hole, which makes a filesystem's
// first gigabyte slower than its later ones.
func Preallocated() Option { return func(c *config) { c.preallocate = true } }

// MountFS is Mount for any filesystem type with a mkfs.<fstype> tool,
// such as ext4 or xfs, so that drivers can be compared on equal footing.
func MountFS(tb testing.TB, fstype string, size int64, opts ...Option) string {
	tb.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
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
	if err := makeImage(img, fstype, size, cfg.preallocate); err != nil {
		tb.Fatal(err)
	}
	dev, err := attach(img)
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
	if err := unix.Mount(dev, mnt, fstype, 0, mountData(fstype, cfg.preallocate)); err != nil {
		tb.Fatalf("mount %s (%s) on %s: %v", dev, fstype, mnt, err)
	}
	tb.Cleanup(func() {
		if err := unmount(mnt); err != nil {
			tb.Errorf("cleanup: %v", err)
		}
	})
	return mnt
}

// attach sets img up on a free loop device. Concurrent callers (parallel
// tests, other packages) can pick the same free device, and all but one
// then fail with EBUSY, so it tries again.
func attach(img string) (string, error) {
	var err error
	for range 5 {
		var dev string
		if dev, err = run("losetup", "--find", "--show", img); err == nil {
			return dev, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return "", err
}

func makeImage(img, fstype string, size int64, preallocate bool) error {
	f, err := os.Create(img)
	if err != nil {
		return err
	}
	if preallocate {
		err = preallocateFile(f, size)
	} else {
		err = f.Truncate(size)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("image %s: %w", img, err)
	}
	_, err = run("mkfs."+fstype, mkfsArgs(fstype, img, preallocate)...)
	return err
}

// mkfsArgs formats without asking whether to overwrite; on a preallocated
// image it also skips the discard that would punch the image sparse again.
func mkfsArgs(fstype, img string, preallocate bool) []string {
	args := []string{"-q"}
	switch fstype {
	case "btrfs":
		args = append(args, "-f")
		if preallocate {
			args = append(args, "--nodiscard")
		}
	case "xfs":
		args = append(args, "-f")
		if preallocate {
			args = append(args, "-K")
		}
	case "ext4":
		args = append(args, "-F")
		if preallocate {
			args = append(args, "-E", "nodiscard")
		}
	}
	return append(args, img)
}

// mountData keeps a preallocated image preallocated: btrfs discards freed
// extents by default (discard=async) where the device supports it, and a
// loop device turns a discard into a hole in the image.
func mountData(fstype string, preallocate bool) string {
	if preallocate && fstype == "btrfs" {
		return "nodiscard"
	}
	return ""
}

// preallocateFile writes zeros over the whole file: fallocate alone would
// leave unwritten extents, whose first write still costs a conversion.
func preallocateFile(f *os.File, size int64) error {
	buf := make([]byte, 4<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		n := min(int64(len(buf)), size-off)
		if _, err := f.Write(buf[:n]); err != nil {
			return err
		}
	}
	return f.Sync()
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
