// Package mount describes filesystem mounts as data. Snapshotters return
// []Mount; the caller decides when and where to mount them, so nothing is
// mounted behind anybody's back and a crash leaves nothing half-owned.
package mount

// Mount is one mount(2) call: Type "overlay", "bind" or a filesystem type,
// Source the device or directory, Options the comma-separated options as
// mount(8) takes them ("ro", "rbind", "lowerdir=a:b", "upperdir=…").
type Mount struct {
	Type    string
	Source  string
	Options []string
}
