package apitest

import (
	"context"
	"net/netip"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/storage"
)

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// ContainerList lists newest first, running ones only unless All, with
// dockerd's filters.
func (s *Containers) ContainerList(_ context.Context, opts berthcontainer.ListOptions) ([]container.Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	all := opts.All || opts.Limit > 0 || opts.Latest
	var out []container.Summary
	for i := len(s.list) - 1; i >= 0; i-- {
		c := s.list[i]
		if !all && !c.running() && len(opts.Filters["status"]) == 0 {
			continue
		}
		ok, err := s.matches(c, opts.Filters)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, s.summary(c, opts.Size))
		}
	}
	switch {
	case opts.Latest && len(out) > 1:
		out = out[:1]
	case opts.Limit > 0 && len(out) > opts.Limit:
		out = out[:opts.Limit]
	}
	return out, nil
}

// matches applies the list filters; each key must match one of its values.
func (s *Containers) matches(c *fakeContainer, filters map[string][]string) (bool, error) {
	for key, vals := range filters {
		ok := false
		for _, v := range vals {
			m, err := s.matchOne(c, key, v)
			if err != nil {
				return false, err
			}
			ok = ok || m
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

func (s *Containers) matchOne(c *fakeContainer, key, v string) (bool, error) {
	switch key {
	case "id":
		return strings.HasPrefix(c.id, v), nil
	case "name":
		re, err := regexp.Compile(v)
		if err != nil {
			return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'name=%s': %s", v, err.Error())
		}
		return re.MatchString(c.name), nil
	case "status":
		if container.ValidateContainerState(container.ContainerState(v)) != nil {
			return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'status=%s'", v)
		}
		return string(c.status) == v, nil
	case "exited":
		code, err := strconv.Atoi(v)
		if err != nil {
			return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'exited=%s'", v)
		}
		return c.status == container.StateExited && c.exitCode == code, nil
	case "label":
		k, want, hasValue := strings.Cut(v, "=")
		got, present := c.config.Labels[k]
		return present && (!hasValue || got == want), nil
	case "ancestor":
		return s.ancestorMatches(c, v), nil
	case "before", "since":
		other, err := s.find(v)
		if err != nil {
			return false, err
		}
		if key == "before" {
			return c.created.Before(other.created), nil
		}
		return c.created.After(other.created), nil
	}
	return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
}

func (s *Containers) ancestorMatches(c *fakeContainer, v string) bool {
	if c.config.Image == v || normalizeTag(c.config.Image) == normalizeTag(v) {
		return true
	}
	hexID := strings.TrimPrefix(c.imageID, "sha256:")
	v = strings.TrimPrefix(v, "sha256:")
	return v != "" && strings.HasPrefix(hexID, v)
}

// ContainerInspect returns dockerd's document for the container.
func (s *Containers) ContainerInspect(_ context.Context, name string, size bool) (container.InspectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return container.InspectResponse{}, err
	}
	argv := c.argv()
	cfg, host := c.config, c.host
	doc := container.InspectResponse{
		ID: c.id, Created: c.created.UTC().Format(time.RFC3339Nano), Path: argv[0], Args: argv[1:],
		State: &container.State{
			Status: c.status, Running: c.running(), Paused: c.status == container.StatePaused,
			Restarting: c.status == container.StateRestarting, Dead: c.status == container.StateDead,
			Pid: c.pid, ExitCode: c.exitCode, Error: c.errMsg,
			StartedAt: c.startedAt.UTC().Format(time.RFC3339Nano), FinishedAt: c.finishedAt.UTC().Format(time.RFC3339Nano),
		},
		Image: c.imageID, Name: c.name, RestartCount: c.restartCount, Driver: "overlay2", Platform: "linux",
		ResolvConfPath: "/var/lib/berth/containers/" + c.id + "/resolv.conf",
		HostnamePath:   "/var/lib/berth/containers/" + c.id + "/hostname",
		HostsPath:      "/var/lib/berth/containers/" + c.id + "/hosts",
		LogPath:        "/var/lib/berth/containers/" + c.id + "/" + c.id + "-json.log",
		ExecIDs:        slices.Clone(c.execIDs),
		HostConfig:     &host, Config: &cfg, Mounts: []container.MountPoint{},
		GraphDriver: &storage.DriverData{Name: "overlay2", Data: map[string]string{"MergedDir": "/var/lib/berth/snapshots/overlay2/" + c.id + "/merged"}},
		NetworkSettings: &container.NetworkSettings{
			SandboxKey: "/run/berth/netns/" + c.id[:12], Networks: s.endpoints(c), Ports: s.ports(c),
		},
	}
	if size {
		rw, rootfs := c.fs.changedSize(), c.fs.changedSize()+2_050_000
		doc.SizeRw, doc.SizeRootFs = &rw, &rootfs
	}
	return doc, nil
}

// ContainerRename renames, keeping names unique.
func (s *Containers) ContainerRename(_ context.Context, name, newName string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return err
	}
	if !validName.MatchString(newName) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	full := "/" + strings.TrimPrefix(newName, "/")
	if full == c.name {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Renaming a container with the same name as its current name")
	}
	for _, other := range s.list {
		if other.name == full {
			return errdefs.Errorf(errdefs.ErrConflict, `Conflict. The container name "%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, full, other.id)
		}
	}
	old := c.name
	c.name = full
	s.publish(c, eventtypes.ActionRename, map[string]string{"oldName": old})
	return nil
}

// ContainerRemove removes a stopped container, or kills a running one
// first when forced.
func (s *Containers) ContainerRemove(ctx context.Context, name string, opts berthcontainer.RemoveOptions) error {
	s.mu.Lock()
	c, err := s.find(name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	switch {
	case c.status == container.StatePaused && !opts.Force:
		s.mu.Unlock()
		return errdefs.Errorf(errdefs.ErrConflict, "You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", c.id)
	case c.running() && !opts.Force:
		s.mu.Unlock()
		return errdefs.Errorf(errdefs.ErrConflict, "You cannot remove a running container %s. Stop the container before attempting removal or force remove", c.id)
	case c.running():
		exited := c.exited
		s.signal(c, 9)
		s.mu.Unlock()
		select {
		case <-exited:
		case <-ctx.Done():
			return ctx.Err()
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	s.remove(c)
	return nil
}

// remove drops c; s.mu is held.
func (s *Containers) remove(c *fakeContainer) {
	if !slices.Contains(s.list, c) {
		return
	}
	s.list = slices.DeleteFunc(s.list, func(o *fakeContainer) bool { return o == c })
	s.publish(c, eventtypes.ActionDestroy, nil)
	close(c.removed)
}

// ContainersPrune removes every stopped container matching the label and
// until filters.
func (s *Containers) ContainersPrune(_ context.Context, filters map[string][]string) (container.PruneReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var report container.PruneReport
	for _, c := range slices.Clone(s.list) {
		if c.running() || c.status == container.StateRestarting {
			continue
		}
		ok, err := s.pruneMatches(c, filters)
		if err != nil {
			return container.PruneReport{}, err
		}
		if !ok {
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, c.id)
		report.SpaceReclaimed += uint64(c.fs.changedSize())
		s.remove(c)
	}
	return report, nil
}

func (s *Containers) pruneMatches(c *fakeContainer, filters map[string][]string) (bool, error) {
	for key, vals := range filters {
		for _, v := range vals {
			switch key {
			case "label":
				if ok, _ := s.matchOne(c, "label", v); !ok {
					return false, nil
				}
			case "label!":
				if ok, _ := s.matchOne(c, "label", v); ok {
					return false, nil
				}
			case "until":
				d, err := time.ParseDuration(v)
				if err != nil {
					return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter 'until=%s'", v)
				}
				if !c.created.Before(s.now().Add(-d)) {
					return false, nil
				}
			default:
				return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
			}
		}
	}
	return true, nil
}

// basename is the last element of a container path.
func basename(p string) string { return path.Base(path.Clean("/" + p)) }
