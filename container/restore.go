package container

import (
	"context"
	"errors"
	"time"

	"berth/errdefs"
	"berth/mount"
	"berth/task"

	"github.com/moby/moby/api/types/container"
)

// Restore reconnects to the shims of containers that were running when the
// daemon stopped (live restore), records the exits that happened while it
// was down, finishes interrupted removals and applies restart policies.
func (s *Service) Restore(ctx context.Context) {
	s.referenceVolumes(ctx)
	for _, e := range s.all() {
		e.mu.Lock()
		status := e.rec.State.Status
		e.mu.Unlock()
		switch status {
		case StatusRunning, StatusPaused, StatusRestarting:
			s.reconnect(ctx, e)
		case StatusRemoving, StatusDead:
			e.mu.Lock()
			e.rec.State.Status = StatusDead
			e.mu.Unlock()
			if err := s.remove(ctx, e); err != nil {
				s.log.Warn("finish removal", "container", e.rec.ID, "err", err)
			}
		default:
			mount.UnmountAll(s.rootfs(e.rec.ID))
		}
	}
	s.removeExitedAutoRemove(ctx)
	if s.opts.Network != nil {
		var live []string
		for _, e := range s.all() {
			e.mu.Lock()
			if e.rec.State.IsRunning() {
				live = append(live, e.rec.ID)
			}
			e.mu.Unlock()
		}
		if err := s.opts.Network.Restore(ctx, live); err != nil {
			s.log.Warn("network restore", "err", err)
		}
	}
	for _, e := range s.all() {
		s.restartOnBoot(ctx, e)
	}
}

// removeExitedAutoRemove finishes the --rm of containers that exited while
// the daemon was down, as dockerd does at restore. It also keeps a layer
// that was mounted volatile (see volatileMounts) from being mounted again
// after the host crashed.
func (s *Service) removeExitedAutoRemove(ctx context.Context) {
	for _, e := range s.all() {
		e.mu.Lock()
		rm := e.rec.HostConfig.AutoRemove && e.rec.State.HasBeenStarted && e.rec.State.Status == StatusExited
		id := e.rec.ID
		e.mu.Unlock()
		if !rm {
			continue
		}
		if err := s.ContainerRemove(ctx, id, RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			s.log.Warn("auto-remove at restore", "container", id, "err", err)
		}
	}
}

// reconnect adopts a running container's shim, or records its exit.
func (s *Service) reconnect(ctx context.Context, e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dir := s.shimDir(e.rec.ID)
	if shim, err := task.Connect(ctx, dir); err == nil {
		st, err := shim.State(ctx)
		if err == nil && (st.Status == task.StatusRunning || st.Status == task.StatusPaused) {
			e.shim = shim
			e.rec.State.Status, e.rec.State.Pid = StatusRunning, st.Pid
			if st.Status == task.StatusPaused {
				e.rec.State.Status = StatusPaused
			}
			s.save(e)
			go s.monitor(e, shim)
			s.log.Info("reconnected to container", "container", e.rec.ID, "pid", st.Pid)
			return
		}
		if err == nil && st.Exit != nil {
			shim.Delete(ctx, true)
			s.recordExit(e, *st.Exit)
			return
		}
	}
	// No shim: the exit it recorded is the truth; without one, the
	// container died with its shim.
	st, err := task.ReadExit(dir)
	if err != nil {
		st = task.ExitStatus{Code: 255, FinishedAt: time.Now().UTC()}
		if !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Warn("read exit status", "container", e.rec.ID, "err", err)
		}
		if rt, rerr := s.runtime(e.rec.Runtime); rerr == nil {
			rt.Delete(ctx, e.rec.ID, true)
		}
	}
	s.recordExit(e, st)
}

// recordExit stores an exit learned at restore; e.mu is held.
func (s *Service) recordExit(e *entry, st task.ExitStatus) {
	s.teardown(context.Background(), &e.rec)
	s.deactivateMounts(context.Background(), &e.rec)
	mount.UnmountAll(s.rootfs(e.rec.ID))
	e.rec.State.Status, e.rec.State.Pid = StatusExited, 0
	e.rec.State.ExitCode, e.rec.State.FinishedAt = st.Code, st.FinishedAt
	s.save(e)
	s.log.Info("container exited while the daemon was down", "container", e.rec.ID, "exitCode", st.Code)
}

// restartOnBoot starts, after a daemon restart, the containers whose
// policy wants them running: always and unless-stopped unless the user
// stopped them; on-failure if they failed and have retries left.
func (s *Service) restartOnBoot(ctx context.Context, e *entry) {
	e.mu.Lock()
	defer e.mu.Unlock()
	rec := &e.rec
	if rec.State.IsRunning() || rec.State.ManuallyStopped || !rec.State.HasBeenStarted {
		return
	}
	p := rec.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
	case container.RestartPolicyOnFailure:
		if rec.State.ExitCode == 0 || (p.MaximumRetryCount > 0 && rec.State.RestartCount >= p.MaximumRetryCount) {
			return
		}
	default:
		return
	}
	rec.State.Status = StatusRestarting
	s.scheduleRestart(e, 0)
}
