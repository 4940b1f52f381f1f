package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	"berth/mount"
)

// volatileOption makes overlayfs skip every sync of the upper layer
// (Linux 5.10). An auto-removed container's writable layer is deleted at
// its exit, so flushing it is wasted work; without it the unmount at exit
// syncs the whole filesystem beneath the layer, which on a busy disk costs
// tens of milliseconds per container. podman mounts --rm containers the
// same way.
const volatileOption = "volatile"

// volatileMounts returns mounts with the overlay ones made volatile. The
// kernel refuses to mount an upper layer again once it was mounted
// volatile (its marker, <workdir>/work/incompat/volatile, says the layer
// may have lost writes in a crash); a container mounts its layer again
// only within one boot (Restore removes auto-removed containers that are
// not running), so the marker is cleared first.
func volatileMounts(mounts []mount.Mount) []mount.Mount {
	out := make([]mount.Mount, len(mounts))
	for i, m := range mounts {
		out[i] = m
		if m.Type != "overlay" || slices.Contains(m.Options, volatileOption) {
			continue
		}
		for _, o := range m.Options {
			if dir, ok := strings.CutPrefix(o, "workdir="); ok {
				os.RemoveAll(filepath.Join(dir, "work", "incompat", volatileOption))
			}
		}
		out[i].Options = append(slices.Clip(m.Options), volatileOption)
	}
	return out
}
