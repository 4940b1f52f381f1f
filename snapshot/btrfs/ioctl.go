package btrfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctls berth uses, as include/uapi/linux/btrfs.h defines them.
// The argument structs are declared here with the kernel's layout; a test
// checks their sizes against the numbers encoded in the requests.
const (
	ioctlMagic = 0x94

	// firstFreeObjectID is the inode number of every subvolume's root
	// directory (BTRFS_FIRST_FREE_OBJECTID).
	firstFreeObjectID = 256
	// lastFreeObjectID bounds ordinary inode numbers; above it the fs tree
	// holds internal objects such as the orphan and free-ino items.
	lastFreeObjectID = ^uint64(0) - 255

	subvolReadOnly = 1 << 1 // BTRFS_SUBVOL_RDONLY
)

func ioc(dir, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | ioctlMagic<<8 | nr
}

const (
	iocWrite = 1
	iocRead  = 2
)

var (
	iocSubvolCreate = ioc(iocWrite, 14, unsafe.Sizeof(volArgs{}))
	iocSnapDestroy  = ioc(iocWrite, 15, unsafe.Sizeof(volArgs{}))
	// The v2 request encodes the size without the flexible buffer.
	iocTreeSearchV2  = ioc(iocRead|iocWrite, 17, unsafe.Offsetof(searchArgsV2{}.buf))
	iocSnapCreateV2  = ioc(iocWrite, 23, unsafe.Sizeof(volArgsV2{}))
	iocSubvolGetFlag = ioc(iocRead, 25, unsafe.Sizeof(uint64(0)))
	iocSubvolSetFlag = ioc(iocWrite, 26, unsafe.Sizeof(uint64(0)))
	iocGetSubvolInfo = ioc(iocRead, 60, unsafe.Sizeof(subvolInfo{}))
)

// volArgs is struct btrfs_ioctl_vol_args (4096 bytes).
type volArgs struct {
	fd   int64
	name [4088]byte
}

// volArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes) without the
// qgroup-inherit union members, which berth leaves zero.
type volArgsV2 struct {
	fd      int64
	transid uint64
	flags   uint64
	unused  [4]uint64
	name    [4040]byte
}

type ioctlTimespec struct {
	sec  uint64
	nsec uint32
	_    uint32
}

// subvolInfo is struct btrfs_ioctl_get_subvol_info_args (504 bytes).
type subvolInfo struct {
	treeID       uint64
	name         [256]byte
	parentID     uint64
	dirID        uint64
	generation   uint64
	flags        uint64
	uuid         [16]byte
	parentUUID   [16]byte
	receivedUUID [16]byte
	ctransid     uint64
	otransid     uint64
	stransid     uint64
	rtransid     uint64
	ctime        ioctlTimespec
	otime        ioctlTimespec
	stime        ioctlTimespec
	rtime        ioctlTimespec
	reserved     [8]uint64
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg)); errno != 0 {
		return errno
	}
	return nil
}

// openDir opens a directory for use as an ioctl target.
func openDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func setName(dst []byte, name string) error {
	if len(name) >= len(dst) || name == "" {
		return fmt.Errorf("subvolume name %q: length %d out of range", name, len(name))
	}
	copy(dst, name)
	return nil
}

// createSubvolume makes an empty subvolume at path, whose parent exists.
func createSubvolume(path string) error {
	dir, name := filepath.Split(path)
	dfd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var args volArgs
	if err := setName(args.name[:], name); err != nil {
		return err
	}
	if err := ioctl(dfd, iocSubvolCreate, unsafe.Pointer(&args)); err != nil {
		return &fs.PathError{Op: "create subvolume", Path: path, Err: err}
	}
	return nil
}

// snapshotSubvolume makes path a snapshot of the subvolume src. The
// snapshot is taken in the kernel in O(1): it shares every extent of src
// until one side writes.
func snapshotSubvolume(src, path string, readOnly bool) error {
	sfd, err := openDir(src)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	dir, name := filepath.Split(path)
	dfd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	args := volArgsV2{fd: int64(sfd)}
	if readOnly {
		args.flags = subvolReadOnly
	}
	if err := setName(args.name[:], name); err != nil {
		return err
	}
	if err := ioctl(dfd, iocSnapCreateV2, unsafe.Pointer(&args)); err != nil {
		return &fs.PathError{Op: "snapshot " + src, Path: path, Err: err}
	}
	return nil
}

// destroySubvolume deletes the subvolume at path at once, whatever it
// holds: the kernel unlinks it in one transaction and frees its extents in
// the background. Subvolumes nested inside it (a privileged container may
// create some) are destroyed first, as the kernel refuses otherwise.
func destroySubvolume(path string) error {
	err := snapDestroy(path)
	if !errors.Is(err, unix.ENOTEMPTY) {
		return err
	}
	// Entries of a read-only subvolume cannot be unlinked, nested
	// subvolumes included.
	if err := setReadOnly(path, false); err != nil {
		return err
	}
	if err := destroyNested(path); err != nil {
		return err
	}
	return snapDestroy(path)
}

func snapDestroy(path string) error {
	dir, name := filepath.Split(filepath.Clean(path))
	dfd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	var args volArgs
	if err := setName(args.name[:], name); err != nil {
		return err
	}
	if err := ioctl(dfd, iocSnapDestroy, unsafe.Pointer(&args)); err != nil {
		return &fs.PathError{Op: "destroy subvolume", Path: path, Err: err}
	}
	return nil
}

// destroyNested destroys every subvolume below root, not root itself.
func destroyNested(root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root || !d.IsDir() {
			return err
		}
		sub, err := isSubvolume(path)
		if err != nil || !sub {
			return err
		}
		if err := destroySubvolume(path); err != nil {
			return err
		}
		return filepath.SkipDir
	})
}

// isSubvolume reports whether path is the root directory of a subvolume.
func isSubvolume(path string) (bool, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return false, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.IsDir() && st.Ino == firstFreeObjectID, nil
}

func subvolFlags(fd int) (uint64, error) {
	var flags uint64
	err := ioctl(fd, iocSubvolGetFlag, unsafe.Pointer(&flags))
	return flags, err
}

// isReadOnly reports whether the subvolume at path is read-only.
func isReadOnly(path string) (bool, error) {
	fd, err := openDir(path)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	flags, err := subvolFlags(fd)
	if err != nil {
		return false, &fs.PathError{Op: "get subvolume flags", Path: path, Err: err}
	}
	return flags&subvolReadOnly != 0, nil
}

// setReadOnly sets or clears the read-only flag of the subvolume at path.
// A read-only subvolume refuses every change with EROFS, through any mount.
func setReadOnly(path string, readOnly bool) error {
	fd, err := openDir(path)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags, err := subvolFlags(fd)
	if err != nil {
		return &fs.PathError{Op: "get subvolume flags", Path: path, Err: err}
	}
	want := flags &^ subvolReadOnly
	if readOnly {
		want |= subvolReadOnly
	}
	if want == flags {
		return nil
	}
	if err := ioctl(fd, iocSubvolSetFlag, unsafe.Pointer(&want)); err != nil {
		return &fs.PathError{Op: "set subvolume flags", Path: path, Err: err}
	}
	return nil
}

// createdTransid returns the transaction in which the subvolume open as fd
// was created: for a snapshot, the moment it split from its source.
func createdTransid(fd int) (uint64, error) {
	var info subvolInfo
	if err := ioctl(fd, iocGetSubvolInfo, unsafe.Pointer(&info)); err != nil {
		return 0, err
	}
	return info.otransid, nil
}
