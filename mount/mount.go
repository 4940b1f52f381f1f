// Package mount describes filesystem mounts as data. Snapshotters return
// []Mount; the caller decides when and where to mount them, so nothing is
// mounted behind anybody's back and a crash leaves nothing half-owned.
//
// All performs mounts; Unmount and UnmountAll undo them; WithTempMount
// brackets a function. OverlayOf, BindOf and WritableDir read a []Mount
// without touching the kernel, so a caller can tell an overlay with an
// upperdir from a plain bind of a directory.
//
// Overlay mounts always go through the new mount API (fsopen("overlay"),
// one fsconfig "lowerdir+" per layer, upperdir, workdir, fsmount,
// move_mount), not only when the option string outgrows mount(2)'s page of
// option data. One code path means the 200-layer case is the path every
// container takes, not a rarely exercised branch; layer paths need no
// escaping; and the kernel's own error text (read back from the filesystem
// context) is added to failures instead of a bare EINVAL. Kernels without
// fsopen or "lowerdir+" (before 6.8) fall back to mount(2), where an option
// string longer than a page fails with ErrInvalidArgument.
package mount

// Mount is one mount(2) call: Type "overlay", "bind" or a filesystem type,
// Source the device or directory, Options the comma-separated options as
// mount(8) takes them ("ro", "rbind", "lowerdir=a:b", "upperdir=…").
type Mount struct {
	Type    string
	Source  string
	Options []string
}
