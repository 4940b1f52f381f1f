// Package nsenter creates, enters and removes network namespaces that are
// kept alive by a bind mount on a file (as `ip netns` does under
// /run/netns, but at any path).
//
// Go schedules goroutines on any OS thread, and a network namespace belongs
// to a thread. Do therefore runs its function on a fresh goroutine locked to
// its thread and never unlocks it: when the goroutine returns, the runtime
// throws that thread away instead of letting another goroutine inherit the
// foreign namespace. Sockets created inside Do stay in that namespace for
// their whole life and may be used from any goroutine afterwards.
package nsenter

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// Create makes a new, empty network namespace and bind-mounts it on path,
// which must not exist. On error nothing is left behind.
func Create(path string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
	if err != nil {
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately never unlocked: see the package comment.
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
			errc <- fmt.Errorf("bind mount: %w", err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		os.Remove(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

// Remove unmounts and deletes a namespace file made by Create. The
// namespace itself lives on while processes or open handles use it. A path
// that is already gone is not an error.
func Remove(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// Mounted reports whether path holds a live namespace mount (and not just
// the empty file a crash or a reboot left behind).
func Mounted(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}

// Do runs fn on a thread inside the network namespace at path.
func Do(path string, fn func() error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer f.Close()
	return DoFd(int(f.Fd()), fn)
}

// DoFd is Do for an open namespace file descriptor; the caller keeps it
// open until DoFd returns.
func DoFd(fd int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// Deliberately never unlocked: see the package comment.
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns: %w", err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
