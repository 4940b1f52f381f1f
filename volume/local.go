package volume

import (
	"fmt"
	"slices"
	"strings"

	"berth/errdefs"
	"berth/mount"
)

// The local driver's options: what to mount at _data. "size" (an XFS
// project quota in Docker) is refused: there is no quota support here.
var (
	validOptions = map[string]bool{"type": true, "device": true, "o": true}
	requires     = map[string][]string{"type": {"device"}, "device": {"type"}, "o": {"device", "type"}}
)

func validateOptions(opts map[string]string) error {
	for _, k := range slices.Sorted(mapsKeys(opts)) {
		if k == "size" {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "quota size requested but no quota support")
		}
		if !validOptions[k] {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid option: %q", k)
		}
	}
	for _, k := range []string{"device", "o", "type"} {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, need := range requires[k] {
			if _, ok := opts[need]; !ok {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, "missing required option: %q", need)
			}
		}
	}
	return nil
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func needsMount(r *record) bool {
	return r.Options["type"] != "" || r.Options["device"] != ""
}

// dataMount is what the options ask to mount at _data: type=none with
// o=bind binds the device directory, anything else is mount(8)'s
// "mount -t type -o o device".
func dataMount(r *record) mount.Mount {
	var opts []string
	for o := range strings.SplitSeq(r.Options["o"], ",") {
		if o != "" {
			opts = append(opts, o)
		}
	}
	return mount.Mount{Type: r.Options["type"], Source: r.Options["device"], Options: opts}
}

// mountData mounts a volume's device at _data unless it already is (by
// this daemon, or by a previous one whose containers may still run); s.mu
// is held.
func (s *Service) mountData(r *record) error {
	if !needsMount(r) || s.mounted[r.Name] {
		return nil
	}
	p := s.Path(r.Name)
	if ok, err := isMountPoint(p); err != nil {
		return err
	} else if ok {
		s.mounted[r.Name] = true
		return nil
	}
	if err := dataMount(r).Mount(p); err != nil {
		return fmt.Errorf("error while mounting volume '%s': failed to mount local volume: %w", p, err)
	}
	s.mounted[r.Name] = true
	return nil
}

// unmountData undoes mountData; s.mu is held.
func (s *Service) unmountData(r *record) error {
	if !needsMount(r) {
		return nil
	}
	if err := mount.UnmountAll(s.Path(r.Name)); err != nil {
		return fmt.Errorf("unmount volume %s: %w", r.Name, err)
	}
	delete(s.mounted, r.Name)
	return nil
}

// isMountPoint reports whether something is mounted exactly at p, from the
// mount table (a bind of a directory onto itself shares its device, so
// comparing devices would miss it).
func isMountPoint(p string) (bool, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return false, err
	}
	for _, m := range mounts {
		if m.point == p {
			return true, nil
		}
	}
	return false, nil
}

// volatile reports whether a volume's content lives only as long as its
// mount.
func volatile(r *record) bool {
	return r.Options["type"] == "tmpfs" || r.Options["type"] == "ramfs"
}
