package btrfs

import (
	"context"
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"berth/snapshot"
)

// searchKey is struct btrfs_ioctl_search_key (104 bytes). min and max
// (objectid, type, offset) bound one range of compound keys; the transid
// bounds skip whole tree blocks last written outside them.
type searchKey struct {
	treeID      uint64
	minObjectID uint64
	maxObjectID uint64
	minOffset   uint64
	maxOffset   uint64
	minTransid  uint64
	maxTransid  uint64
	minType     uint32
	maxType     uint32
	nrItems     uint32
	_           uint32
	_           [4]uint64
}

// searchArgsV2 is struct btrfs_ioctl_search_args_v2 with its flexible
// buffer. 64 KiB holds any item (a tree block is at most 64 KiB), where
// the v1 ioctl's 3992 bytes would truncate large inline extents.
type searchArgsV2 struct {
	key     searchKey
	bufSize uint64
	buf     [64 << 10]byte
}

const (
	searchHeaderSize = 32 // struct btrfs_ioctl_search_header

	keyInodeItem  = 1   // BTRFS_INODE_ITEM_KEY
	keyExtentData = 108 // BTRFS_EXTENT_DATA_KEY

	extentInline = 0 // BTRFS_FILE_EXTENT_INLINE
	// Offsets in struct btrfs_file_extent_item (packed, little endian).
	extentGenOff      = 0
	extentTypeOff     = 20
	extentInlineData  = 21
	extentDiskByteOff = 21
	extentDiskNumOff  = 29
	extentItemSize    = 53
	// Offset of transid (last change) in struct btrfs_inode_item.
	inodeTransidOff = 8
)

// searchItem is one item returned by a tree search.
type searchItem struct {
	objectID uint64
	typ      uint32
	data     []byte
}

// searchTree calls fn for every item of the fs tree of the subvolume open
// as fd that lies in a tree block written after transaction since. The
// kernel skips untouched subtrees, so a snapshot that changed little is
// searched in little time however large it is.
func searchTree(ctx context.Context, fd int, since uint64, fn func(searchItem)) error {
	args := &searchArgsV2{key: searchKey{
		maxObjectID: ^uint64(0), maxOffset: ^uint64(0), maxType: 255,
		minTransid: since + 1, maxTransid: ^uint64(0),
	}}
	if since == 0 {
		args.key.minTransid = 0
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		args.key.nrItems = ^uint32(0)
		args.bufSize = uint64(len(args.buf))
		if err := ioctl(fd, iocTreeSearchV2, unsafe.Pointer(args)); err != nil {
			return fmt.Errorf("tree search: %w", err)
		}
		n := int(args.key.nrItems)
		if n == 0 {
			return nil
		}
		var objectID, offset uint64
		var typ uint32
		buf := args.buf[:]
		for range n {
			objectID = binary.LittleEndian.Uint64(buf[8:])
			offset = binary.LittleEndian.Uint64(buf[16:])
			typ = binary.LittleEndian.Uint32(buf[24:])
			size := int(binary.LittleEndian.Uint32(buf[28:]))
			fn(searchItem{objectID: objectID, typ: typ, data: buf[searchHeaderSize : searchHeaderSize+size]})
			buf = buf[searchHeaderSize+size:]
		}
		if !nextKey(&args.key, objectID, typ, offset) {
			return nil
		}
	}
}

// nextKey moves the search's lower bound just past the last key returned,
// and reports false when that key was the largest possible.
func nextKey(k *searchKey, objectID uint64, typ uint32, offset uint64) bool {
	switch {
	case offset < ^uint64(0):
		offset++
	case typ < 255:
		offset, typ = 0, typ+1
	case objectID < ^uint64(0):
		offset, typ, objectID = 0, 0, objectID+1
	default:
		return false
	}
	k.minObjectID, k.minType, k.minOffset = objectID, typ, offset
	return true
}

// usageSince measures what the subvolume open as fd holds that was written
// after transaction since (0: everything it holds):
//
//   - Size: the data extents written since, each counted once at its
//     on-disk size however many files or ranges share it, plus inline data
//     by its length. Extents inherited from the snapshot's source are
//     shared with it and not counted. Metadata is not counted.
//   - Inodes: the inodes created or changed since.
//
// Data not yet written back has no extent yet: callers sync first.
func usageSince(ctx context.Context, fd int, since uint64) (snapshot.Usage, error) {
	var u snapshot.Usage
	extents := map[uint64]struct{}{}
	err := searchTree(ctx, fd, since, func(it searchItem) {
		if it.objectID < firstFreeObjectID || it.objectID > lastFreeObjectID {
			return
		}
		switch it.typ {
		case keyInodeItem:
			if len(it.data) >= inodeTransidOff+8 && binary.LittleEndian.Uint64(it.data[inodeTransidOff:]) > since {
				u.Inodes++
			}
		case keyExtentData:
			u.Size += extentBytes(it.data, since, extents)
		}
	})
	return u, err
}

// extentBytes is the disk a file extent item adds when it is newer than
// since and its extent was not counted yet.
func extentBytes(item []byte, since uint64, seen map[uint64]struct{}) int64 {
	if len(item) < extentInlineData || binary.LittleEndian.Uint64(item[extentGenOff:]) <= since {
		return 0
	}
	if item[extentTypeOff] == extentInline {
		return int64(len(item) - extentInlineData)
	}
	if len(item) < extentItemSize {
		return 0
	}
	bytenr := binary.LittleEndian.Uint64(item[extentDiskByteOff:])
	if bytenr == 0 { // a hole
		return 0
	}
	if _, dup := seen[bytenr]; dup {
		return 0
	}
	seen[bytenr] = struct{}{}
	return int64(binary.LittleEndian.Uint64(item[extentDiskNumOff:]))
}

// subvolumeUsage syncs the filesystem, so that written data has its
// extents, and measures the subvolume at path (see usageSince). own says
// whether everything in it belongs to it (a snapshot with no parent);
// otherwise only what was written after it was snapshotted counts.
func subvolumeUsage(ctx context.Context, path string, own bool) (snapshot.Usage, error) {
	fd, err := openDir(path)
	if err != nil {
		return snapshot.Usage{}, err
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return snapshot.Usage{}, fmt.Errorf("sync %s: %w", path, err)
	}
	var since uint64
	if !own {
		if since, err = createdTransid(fd); err != nil {
			return snapshot.Usage{}, fmt.Errorf("subvolume info of %s: %w", path, err)
		}
	}
	u, err := usageSince(ctx, fd, since)
	if err != nil {
		return snapshot.Usage{}, fmt.Errorf("usage of %s: %w", path, err)
	}
	return u, nil
}
