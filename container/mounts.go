package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"berth/errdefs"
	berthmount "berth/mount"
	"berth/volume"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// VolumeStore is what containers need of the volume service: volumes made
// and referenced at create, mounted around each run, released at rm.
type VolumeStore interface {
	Attach(ctx context.Context, ref string, mps []volume.MountPoint) error
	Detach(ctx context.Context, ref string, mps []volume.MountPoint, removeAnonymous bool) error
	Reference(ctx context.Context, ref string, mps []volume.MountPoint, running bool)
	Mount(ctx context.Context, name, ref string, attrs map[string]string) (string, error)
	Unmount(ctx context.Context, name, ref string) error
	Populate(ctx context.Context, name, src string) error
}

// attachMounts resolves a new container's -v, --mount, --volumes-from and
// image VOLUMEs (merged into Config.Volumes) into its record's Mounts,
// creating and referencing the volumes they name. --tmpfs stays in the
// HostConfig, which the spec mounts itself.
func (s *Service) attachMounts(ctx context.Context, e *entry) error {
	// The ID and configs of a container being created do not change.
	id, cfg, hc := e.rec.ID, e.rec.Config, e.rec.HostConfig
	mps, err := volume.Plan(volume.Request{
		Binds: hc.Binds, Mounts: hc.Mounts, VolumesFrom: hc.VolumesFrom, Volumes: cfg.Volumes,
		Tmpfs: hc.Tmpfs, VolumeDriver: hc.VolumeDriver, From: s.mountsOf,
	})
	if err != nil {
		return err
	}
	if len(mps) == 0 {
		return nil
	}
	if s.opts.Volumes == nil {
		if slices.ContainsFunc(mps, func(m volume.MountPoint) bool { return m.Type == mount.TypeVolume }) {
			return fmt.Errorf("container %s: volumes are not available: %w", id, errdefs.ErrFailedPrecondition)
		}
	} else if err := s.opts.Volumes.Attach(ctx, id, mps); err != nil {
		return err
	}
	e.mu.Lock()
	e.rec.Mounts = mps
	e.mu.Unlock()
	return nil
}

// mountsOf is --volumes-from's lookup: another container's mount points.
func (s *Service) mountsOf(ref string) ([]volume.MountPoint, error) {
	e, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.rec.Mounts), nil
}

// detachMounts releases a removed container's volumes; removeAnonymous
// (rm -v, --rm) deletes its anonymous ones.
func (s *Service) detachMounts(ctx context.Context, rec *Record, removeAnonymous bool) {
	if s.opts.Volumes == nil || len(rec.Mounts) == 0 {
		return
	}
	if err := s.opts.Volumes.Detach(context.WithoutCancel(ctx), rec.ID, rec.Mounts, removeAnonymous); err != nil {
		s.log.Warn("release volumes", "container", rec.ID, "err", err)
	}
}

// referenceVolumes tells the volume service, at daemon start, which
// volumes each container uses and which running containers hold them.
func (s *Service) referenceVolumes(ctx context.Context) {
	if s.opts.Volumes == nil {
		return
	}
	for _, e := range s.all() {
		e.mu.Lock()
		s.opts.Volumes.Reference(ctx, e.rec.ID, e.rec.Mounts, e.rec.State.IsRunning())
		e.mu.Unlock()
	}
}

// runtimeMounts prepares rec's mounts for a start, with the root
// filesystem mounted: volumes are mounted (a device at first use) and, at
// the container's first start, a volume that never had content is filled
// with the image's content at its destination (copy-up); bind
// sources are checked (and made, for -v). The caller holds the entry's
// lock; on error deactivateMounts undoes the volume mounts.
func (s *Service) runtimeMounts(ctx context.Context, rec *Record) ([]specs.Mount, error) {
	var out []specs.Mount
	for i := range rec.Mounts {
		mp := &rec.Mounts[i]
		src, err := s.mountSource(ctx, rec, mp)
		if err != nil {
			return nil, err
		}
		m, err := mp.RuntimeMount(src)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Service) mountSource(ctx context.Context, rec *Record, mp *volume.MountPoint) (string, error) {
	switch mp.Type {
	case mount.TypeBind:
		return bindSource(mp)
	case mount.TypeVolume:
		return s.volumeSource(ctx, rec, mp)
	}
	return "", nil
}

// bindSource checks a bind's source at start; -v makes a missing one.
func bindSource(mp *volume.MountPoint) (string, error) {
	if _, err := os.Stat(mp.Source); errors.Is(err, os.ErrNotExist) && mp.CreateSource {
		if err := os.MkdirAll(mp.Source, 0o755); err != nil {
			return "", fmt.Errorf("error while creating mount source path '%s': %w", mp.Source, err)
		}
	} else if err != nil {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid mount config for type \"bind\": bind source path does not exist: %s", mp.Source)
	}
	return mp.Source, volume.CheckPropagation(mp.Source, mp.Propagation)
}

// volumeSource mounts a volume for the run and, at the container's first
// start, copies the image's content into it.
func (s *Service) volumeSource(ctx context.Context, rec *Record, mp *volume.MountPoint) (string, error) {
	if s.opts.Volumes == nil {
		return "", fmt.Errorf("volume %s: volumes are not available: %w", mp.Name, errdefs.ErrFailedPrecondition)
	}
	src, err := s.opts.Volumes.Mount(ctx, mp.Name, rec.ID, map[string]string{
		"destination": mp.Destination, "read/write": strconv.FormatBool(mp.RW), "propagation": string(mp.Propagation),
	})
	if err != nil {
		return "", err
	}
	image, err := securejoin.SecureJoin(s.rootfs(rec.ID), mp.Destination)
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(image); err == nil && !fi.IsDir() {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot mount volume over existing file, file exists %s", image)
	}
	if sub := subpath(mp); sub != "" {
		return volumeSubpath(src, sub)
	}
	if mp.CopyData {
		if err := s.opts.Volumes.Populate(ctx, mp.Name, image); err != nil {
			return "", err
		}
		mp.CopyData = false
	}
	return src, nil
}

func subpath(mp *volume.MountPoint) string {
	if v := mp.Spec.VolumeOptions; v != nil {
		return v.Subpath
	}
	return ""
}

// volumeSubpath is --mount volume-subpath: a directory inside the volume,
// which must exist, resolved without leaving the volume.
func volumeSubpath(src, sub string) (string, error) {
	p, err := securejoin.SecureJoin(src, sub)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot access path %s: %s", p, err.Error())
	}
	return p, nil
}

// deactivateMounts is the end of a run (or a failed start): the volumes
// are released, and those with a device unmounted when no other running
// container uses them. Idempotent.
func (s *Service) deactivateMounts(ctx context.Context, rec *Record) {
	if s.opts.Volumes == nil {
		return
	}
	for _, mp := range rec.Mounts {
		if mp.Type != mount.TypeVolume || mp.Name == "" {
			continue
		}
		if err := s.opts.Volumes.Unmount(context.WithoutCancel(ctx), mp.Name, rec.ID); err != nil {
			s.log.Warn("unmount volume", "container", rec.ID, "volume", mp.Name, "err", err)
		}
	}
}

// applyMountPropagation makes the container's root propagate the way its
// shared or slave binds need.
func applyMountPropagation(sp *specs.Spec, rec *Record) {
	if p := volume.RootfsPropagation(rec.Mounts); p != "" && sp.Linux != nil {
		sp.Linux.RootfsPropagation = p
	}
}

// wireMounts is the Mounts list of inspect and ps.
func wireMounts(mps []volume.MountPoint) []container.MountPoint {
	out := make([]container.MountPoint, 0, len(mps))
	for _, mp := range mps {
		out = append(out, mp.Wire())
	}
	return out
}

// withVolumes is withRootfs for `cp`: the container's volumes and binds
// are laid over a private copy of its root filesystem, so that a copy
// into or out of a volume's path reads and writes the volume, as in the
// container, and never the writable layer beneath it. The copy of the
// root is private, so these mounts never reach the running container.
func (s *Service) withVolumes(ctx context.Context, name string, fn func(root string) error) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	id, mps := e.rec.ID, slices.Clone(e.rec.Mounts)
	e.mu.Unlock()
	if len(mps) == 0 {
		return s.withRootfs(ctx, name, fn)
	}
	return s.withRootfs(ctx, name, func(root string) error {
		tmp, err := os.MkdirTemp("", "berth-cp-")
		if err != nil {
			return err
		}
		defer os.Remove(tmp)
		if err := unix.Mount(root, tmp, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
		// Unmount the binds before the volumes they show are released.
		release := func() {}
		defer func() {
			berthmount.UnmountAll(tmp)
			release()
		}()
		if err := unix.Mount("", tmp, "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
		release, err = s.overlayMounts(ctx, id, tmp, mps)
		if err != nil {
			return err
		}
		return fn(tmp)
	})
}

// overlayMounts binds each volume and bind source at its destination
// under root, parents first; tmpfs mounts exist only inside a running
// container and are left out. release gives the volumes back; the caller
// unmounts root's binds first.
func (s *Service) overlayMounts(ctx context.Context, id, root string, mps []volume.MountPoint) (release func(), err error) {
	slices.SortStableFunc(mps, func(a, b volume.MountPoint) int {
		return strings.Count(a.Destination, "/") - strings.Count(b.Destination, "/")
	})
	ref := "cp-" + id
	var used []string
	release = func() {
		for _, n := range used {
			s.opts.Volumes.Unmount(context.WithoutCancel(ctx), n, ref)
		}
	}
	for _, mp := range mps {
		src := mp.Source
		switch {
		case mp.Type == mount.TypeVolume && s.opts.Volumes != nil:
			p, err := s.opts.Volumes.Mount(ctx, mp.Name, ref, nil)
			if err != nil {
				return release, err
			}
			used = append(used, mp.Name)
			if src = p; subpath(&mp) != "" {
				if src, err = volumeSubpath(p, subpath(&mp)); err != nil {
					return release, err
				}
			}
		case mp.Type != mount.TypeBind:
			continue
		}
		if err := bindInto(root, src, mp); err != nil {
			return release, err
		}
	}
	return release, nil
}

// bindInto mounts src at mp's destination inside root, making the mount
// point when the container never ran (as its start would).
func bindInto(root, src string, mp volume.MountPoint) error {
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("mount %s: %w", mp.Destination, err)
	}
	target, err := securejoin.SecureJoin(root, mp.Destination)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(target); errors.Is(err, os.ErrNotExist) {
		if fi.IsDir() {
			err = os.MkdirAll(target, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
			err = os.WriteFile(target, nil, 0o644)
		}
		if err != nil {
			return fmt.Errorf("mount %s: %w", mp.Destination, err)
		}
	}
	opts := []string{"rbind"}
	if !mp.RW {
		opts = append(opts, "ro")
	}
	return berthmount.Mount{Type: "bind", Source: src, Options: opts}.Mount(target)
}

// usesVolume is ps's volume filter: a mount with that volume name or
// destination.
func usesVolume(mps []volume.MountPoint, v string) bool {
	return slices.ContainsFunc(mps, func(mp volume.MountPoint) bool { return mp.Name == v || mp.Destination == v })
}
