package volume

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/mount"
)

// Request is what a container asks to have mounted, as the create request
// carries it.
type Request struct {
	Binds       []string            // HostConfig.Binds (-v with a source)
	Mounts      []mount.Mount       // HostConfig.Mounts (--mount)
	VolumesFrom []string            // HostConfig.VolumesFrom
	Volumes     map[string]struct{} // Config.Volumes: -v /path and the image's VOLUMEs
	Tmpfs       map[string]string   // HostConfig.Tmpfs (--tmpfs), which the spec mounts
	// VolumeDriver is HostConfig.VolumeDriver, for volumes without one.
	VolumeDriver string
	// From returns the mount points of the container a --volumes-from
	// entry names.
	From func(ref string) ([]MountPoint, error)
}

func duplicate(dest string) error {
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "Duplicate mount point: %s", dest)
}

// Plan resolves a request into mount points, ordered by destination, the
// way dockerd does: --volumes-from first, overridden by binds and --mount
// (which may not collide with each other), then an anonymous volume for
// every Config.Volumes path nothing else covers. It creates nothing:
// Attach does. Bind sources of --mount must exist already.
func Plan(req Request) ([]MountPoint, error) {
	tmpfs := map[string]bool{}
	for d := range req.Tmpfs {
		tmpfs[path.Clean(d)] = true
	}
	byDest := map[string]MountPoint{}
	for _, raw := range req.VolumesFrom {
		ref, rw, err := ParseVolumesFrom(raw)
		if err != nil {
			return nil, err
		}
		if req.From == nil {
			return nil, fmt.Errorf("volumes-from %s: %w", ref, errdefs.ErrNotImplemented)
		}
		from, err := req.From(ref)
		if err != nil {
			return nil, err
		}
		for _, m := range from {
			// The volume is shared as it is: its data was copied (or
			// not) when the other container first used it.
			m.RW, m.CopyData = m.RW && rw, false
			byDest[m.Destination] = m
		}
	}
	explicit := map[string]bool{}
	add := func(mp MountPoint) error {
		if explicit[mp.Destination] {
			return duplicate(mp.Destination)
		}
		if tmpfs[mp.Destination] {
			return duplicate(mp.Destination)
		}
		if mp.Type == mount.TypeVolume && mp.Mode == "" {
			// dockerd marks local volumes for relabelling; inspect shows it.
			mp.Mode = "z"
		}
		explicit[mp.Destination] = true
		byDest[mp.Destination] = mp
		return nil
	}
	for _, raw := range req.Binds {
		mp, err := ParseBind(raw, req.VolumeDriver)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	for _, m := range req.Mounts {
		mp, err := ParseMount(m)
		if err != nil {
			return nil, err
		}
		if err := add(mp); err != nil {
			return nil, err
		}
	}
	if err := addAnonymous(byDest, tmpfs, req); err != nil {
		return nil, err
	}
	out := make([]MountPoint, 0, len(byDest))
	for _, mp := range byDest {
		out = append(out, mp)
	}
	slices.SortFunc(out, func(a, b MountPoint) int { return strings.Compare(a.Destination, b.Destination) })
	return out, nil
}

// addAnonymous gives each Config.Volumes path that nothing else mounts a
// new anonymous volume.
func addAnonymous(byDest map[string]MountPoint, tmpfs map[string]bool, req Request) error {
	for dest := range req.Volumes {
		m := mount.Mount{Type: mount.TypeVolume, Target: dest}
		if err := validateTarget(m); err != nil {
			return err
		}
		d := path.Clean(dest)
		if _, ok := byDest[d]; ok {
			continue
		}
		if tmpfs[d] {
			continue
		}
		mp := MountPoint{Type: mount.TypeVolume, Destination: d, RW: true, CopyData: true, Driver: req.VolumeDriver, Spec: m}
		if req.VolumeDriver != "" {
			mp.Spec.VolumeOptions = &mount.VolumeOptions{DriverConfig: &mount.Driver{Name: req.VolumeDriver}}
		}
		byDest[d] = mp
	}
	return nil
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// checkNesting refuses a mount inside another whose own source holds the
// outer mount's source: the runtime would create the inner mount point in
// that very tree, writing into the host directory (or volume) and making
// the mount show up inside itself.
func checkNesting(mps []MountPoint) error {
	for _, outer := range mps {
		if outer.Source == "" {
			continue
		}
		for _, inner := range mps {
			if inner.Source == "" || inner.Destination == outer.Destination || !within(inner.Destination, outer.Destination) {
				continue
			}
			if within(outer.Source, inner.Source) {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid mount config: %s (source %s) is inside %s (source %s), which would loop: its mount point would be created within its own source",
					inner.Destination, inner.Source, outer.Destination, outer.Source)
			}
		}
	}
	return nil
}
