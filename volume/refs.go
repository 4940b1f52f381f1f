package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"berth/errdefs"

	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
)

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func add(m map[string]map[string]bool, name, ref string) {
	if m[name] == nil {
		m[name] = map[string]bool{}
	}
	m[name][ref] = true
}

func drop(m map[string]map[string]bool, name, ref string) {
	delete(m[name], ref)
	if len(m[name]) == 0 {
		delete(m, name)
	}
}

func volumeConfig(mp MountPoint) (opts, labels map[string]string) {
	if v := mp.Spec.VolumeOptions; v != nil {
		labels = v.Labels
		if v.DriverConfig != nil {
			opts = v.DriverConfig.Options
		}
	}
	return opts, labels
}

// Attach makes the volumes of a container's planned mounts exist — new
// anonymous ones, named ones created on first use with the request's
// driver options and labels — and records ref (the container ID) as their
// user, so they cannot be removed under it. It fills in each volume mount
// point's Name, Driver and Source. On failure nothing is left: references
// taken are dropped and volumes made are removed again.
func (s *Service) Attach(ctx context.Context, ref string, mps []MountPoint) (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var created, referenced []string
	defer func() {
		if err == nil {
			return
		}
		for _, n := range referenced {
			drop(s.refs, n, ref)
		}
		for _, n := range created {
			if rerr := s.remove(n); rerr != nil {
				s.log.Warn("remove volume of a failed create", "volume", n, "err", rerr)
			}
		}
	}()
	for i := range mps {
		mp := &mps[i]
		if mp.Type != mount.TypeVolume {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		opts, labels := volumeConfig(*mp)
		r, isNew, err := s.create(mp.Name, mp.Driver, opts, labels)
		if err != nil {
			return err
		}
		if isNew {
			created = append(created, r.Name)
		}
		if !s.refs[r.Name][ref] {
			add(s.refs, r.Name, ref)
			referenced = append(referenced, r.Name)
		}
		mp.Name, mp.Driver, mp.Source = r.Name, r.Driver, s.Path(r.Name)
	}
	return checkNesting(mps)
}

// Detach drops ref's use of its volumes; with removeAnonymous (rm -v,
// --rm) the anonymous ones are removed too, unless another container
// still uses them.
func (s *Service) Detach(ctx context.Context, ref string, mps []MountPoint, removeAnonymous bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume || mp.Name == "" {
			continue
		}
		drop(s.refs, mp.Name, ref)
		if !removeAnonymous || !mp.Anonymous() {
			continue
		}
		err := s.remove(mp.Name)
		if err != nil && !errdefs.Conflict(err) && !errdefs.NotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Reference re-adds a container's references when the daemon starts; a
// container that was running (its mounts still held by the kernel) counts
// as having its volumes mounted. Volumes that no longer exist are skipped.
func (s *Service) Reference(ctx context.Context, ref string, mps []MountPoint, running bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, mp := range mps {
		if mp.Type != mount.TypeVolume || mp.Name == "" {
			continue
		}
		r, err := s.get(mp.Name)
		if err != nil {
			s.log.Warn("container uses a missing volume", "container", ref, "volume", mp.Name, "err", err)
			continue
		}
		add(s.refs, mp.Name, ref)
		if running {
			if err := s.mountData(r); err != nil {
				s.log.Warn("remount volume of a running container", "volume", mp.Name, "err", err)
			}
			add(s.active, mp.Name, ref)
		}
	}
}

// Mount makes a volume ready for a starting container, mounting its
// device when it has one and is not mounted yet, and returns its host
// directory. attrs, when not nil, are published as the mount event's
// (destination, read/write, propagation); a nil one is a mount for the
// daemon's own use (cp), which Docker does not announce.
func (s *Service) Mount(ctx context.Context, name, ref string, attrs map[string]string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.get(name)
	if err != nil {
		return "", err
	}
	if err := s.ensureDir(name); err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if err := s.mountData(r); err != nil {
		return "", err
	}
	add(s.active, name, ref)
	if attrs != nil {
		s.publish(name, eventtypes.ActionMount, withLabel(attrs, "container", ref))
	} else {
		s.active[name][ref] = false // not announced, see Unmount
	}
	return s.Path(name), nil
}

// Unmount is the end of ref's run: the last container to stop using a
// volume with a device unmounts it.
func (s *Service) Unmount(ctx context.Context, name, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	announced, ok := s.active[name][ref]
	if !ok {
		return s.unmountIfUnused(name)
	}
	drop(s.active, name, ref)
	if announced {
		s.publish(name, eventtypes.ActionUnmount, map[string]string{"container": ref})
	}
	return s.unmountIfUnused(name)
}

// unmountIfUnused unmounts a volume's device once no running container
// uses it; s.mu is held.
func (s *Service) unmountIfUnused(name string) error {
	if len(s.active[name]) > 0 {
		return nil
	}
	r, err := s.get(name)
	if err != nil {
		if errdefs.NotFound(err) {
			return nil
		}
		return err
	}
	return s.unmountData(r)
}

// Populate is copy-up: a volume that never had content when a container
// asked for it is filled with the tree at src (the image's content at the
// mount's destination, see CopyUp), once. A volume emptied later is not
// filled again, except a tmpfs-backed one, whose content ends with its
// mount. The copy runs without the service's lock; the volume is
// mounted by the caller, so it cannot be removed meanwhile.
func (s *Service) Populate(ctx context.Context, name, src string) error {
	s.mu.Lock()
	r, err := s.get(name)
	s.mu.Unlock()
	if err != nil || r.Filled {
		return err
	}
	dst := s.Path(name)
	ents, err := os.ReadDir(dst)
	if err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	filled := len(ents) > 0
	if !filled {
		if filled, err = CopyUp(ctx, src, dst); err != nil {
			return fmt.Errorf("volume %s: %w", name, err)
		}
	}
	if !filled || volatile(r) {
		// Nothing in the image there (a later image may have), or the
		// content goes with the mount (tmpfs): fill it again next time.
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, err = s.get(name); err != nil {
		return err
	}
	r.Filled = true
	return s.put(r)
}
