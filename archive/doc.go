// Package archive turns layer tars into directory trees and back.
//
// Apply unpacks an OCI/Docker layer changeset under a root, confining every
// write to that root: parent directories are resolved with openat2 and
// RESOLVE_BENEATH (os.Root where the kernel lacks openat2) and kept open
// across consecutive entries, and the final component is reached with *at
// syscalls that never follow it. Deletions are represented according to
// WhiteoutMode:
//
//	layer tar entry           WhiteoutDelete (full tree)   WhiteoutOverlay (upperdir)
//	dir/.wh.name              remove dir/name              dir/name = char device 0:0
//	dir/.wh..wh..opq          remove lower children of dir xattr trusted.overlay.opaque=y on dir
//	dir/.wh..wh.<other>       ignored (AUFS metadata)      ignored
//
// Parent paths are resolved the way os.Root does: a symlink in a parent
// path is followed only while it stays inside root, so a parent through an
// absolute symlink or one climbing out of root is refused (a chroot would
// have re-rooted it; layers produced by Docker never contain such paths).
// Final components are never followed: an entry replaces what is there.
// Apply assumes nothing else writes under root while it runs.
//
// Diff and Changes go the other way: they compare two complete trees
// (WhiteoutDelete) or read an overlayfs upperdir (WhiteoutOverlay) and
// report changes in a fixed order, so identical trees give identical tars.
// Tar archives a whole tree (docker export).
//
// Compression is handled apart from tar: DecompressStream sniffs gzip,
// zstd, xz and bzip2 by magic number and CompressStream writes gzip, zstd
// and xz.
package archive
