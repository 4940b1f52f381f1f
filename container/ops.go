package container

import (
	"context"
	"os/exec"
	"strconv"
	"strings"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerRename is `rename`.
func (s *Service) ContainerRename(ctx context.Context, name, newName string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	if newName == "" || !validName.MatchString(newName) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", newName)
	}
	newName = "/" + strings.TrimPrefix(newName, "/")
	e.mu.Lock()
	defer e.mu.Unlock()
	old := e.rec.Name
	if old == newName {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Renaming a container with the same name as its current name")
	}
	s.mu.Lock()
	if other, ok := s.byName[newName]; ok {
		s.mu.Unlock()
		return errdefs.Errorf(errdefs.ErrConflict, `Conflict. The container name "%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, newName, other.rec.ID)
	}
	delete(s.byName, old)
	s.byName[newName] = e
	s.mu.Unlock()
	e.rec.Name = newName
	if err := s.save(e); err != nil {
		s.mu.Lock()
		delete(s.byName, newName)
		s.byName[old] = e
		s.mu.Unlock()
		e.rec.Name = old
		return err
	}
	s.publish(&e.rec, eventtypes.ActionRename, map[string]string{"oldName": old})
	return nil
}

// ContainerResize resizes the container's pty.
func (s *Service) ContainerResize(ctx context.Context, name string, height, width uint) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	shim := e.shim
	e.mu.Unlock()
	if shim == nil {
		return errdefs.Errorf(errdefs.ErrConflict, "Container %s is not running", name)
	}
	return shim.Resize(ctx, uint16(width), uint16(height))
}

// ContainerTop is `top`: the host's ps output for the container's
// processes.
func (s *Service) ContainerTop(ctx context.Context, name, psArgs string) (container.TopResponse, error) {
	e, err := s.lookup(name)
	if err != nil {
		return container.TopResponse{}, err
	}
	e.mu.Lock()
	rec := e.rec
	e.mu.Unlock()
	if !rec.State.IsRunning() {
		return container.TopResponse{}, notRunning(&rec)
	}
	rt, err := s.runtime(rec.Runtime)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := rt.Ps(ctx, rec.ID)
	if err != nil {
		return container.TopResponse{}, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.CommandContext(ctx, "ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return container.TopResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "Error running ps: %v", err)
	}
	return parsePS(string(out), pids)
}

// parsePS keeps the rows of ps output whose PID is one of pids.
func parsePS(out string, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	titles := strings.Fields(lines[0])
	col := -1
	for i, t := range titles {
		if t == "PID" {
			col = i
		}
	}
	if col < 0 {
		return container.TopResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "Couldn't find PID field in ps output")
	}
	want := map[int]bool{}
	for _, p := range pids {
		want[p] = true
	}
	resp := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !want[pid] {
			continue
		}
		// The last column (the command) may contain spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		resp.Processes = append(resp.Processes, row)
	}
	return resp, nil
}

// ContainersPrune removes every stopped container matching filters.
func (s *Service) ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error) {
	rep := container.PruneReport{ContainersDeleted: []string{}}
	labels := filters["label"]
	for _, e := range s.all() {
		e.mu.Lock()
		rec := e.rec
		e.mu.Unlock()
		if rec.State.IsRunning() || rec.State.Status == StatusRestarting || rec.State.Status == StatusRemoving {
			continue
		}
		if !anyOf(labels, func(v string) bool {
			k, want, hasV := strings.Cut(v, "=")
			got, ok := rec.Config.Labels[k]
			return ok && (!hasV || got == want)
		}) {
			continue
		}
		rw, _ := s.sizes(ctx, &rec)
		if err := s.remove(ctx, e); err != nil {
			continue
		}
		rep.ContainersDeleted = append(rep.ContainersDeleted, rec.ID)
		rep.SpaceReclaimed += uint64(rw)
	}
	return rep, nil
}
