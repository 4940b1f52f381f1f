package container

import (
	"context"
	"os"
	"strconv"
	"time"

	"berth/mount"
	"berth/task"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// monitor waits for the container's init to exit and records it. It runs
// once per start and holds no lock while waiting.
func (s *Service) monitor(e *entry, shim *task.Shim) {
	st, err := shim.Wait(context.Background())
	if err != nil {
		// The shim went away without a status (killed): trust what it
		// wrote, or record an unknown failure.
		if rec, rerr := task.ReadExit(shim.StateDir()); rerr == nil {
			st = rec
		} else {
			st = task.ExitStatus{Code: 255, FinishedAt: time.Now().UTC()}
		}
	}
	s.handleExit(e, shim, st)
}

// handleExit records an exit, releases the run's resources and applies
// the restart policy or auto-removal.
func (s *Service) handleExit(e *entry, shim *task.Shim, st task.ExitStatus) {
	ctx := context.Background()
	e.mu.Lock()
	if e.shim != shim {
		e.mu.Unlock()
		return // a newer run already replaced this one
	}
	rec := &e.rec
	// Read before the runtime's delete removes the cgroup; dockerd sends
	// "oom" before "die".
	if rec.State.OOMKilled = s.oomKilled(rec); rec.State.OOMKilled {
		s.publish(rec, eventtypes.ActionOOM, nil)
	}
	// The runtime's delete, the network's teardown and the unmounts touch
	// nothing of each other's: they run side by side. The network may
	// still be going when the exit is reported (and the runtime's delete
	// too, for an --rm container); a start or removal waits for both, and
	// the addresses stay taken until the network is gone.
	shimGone := make(chan struct{})
	go func() {
		defer close(shimGone)
		shim.Delete(ctx, true)
		os.RemoveAll(shim.StateDir())
	}()
	s.teardownAsync(ctx, rec)
	s.deactivateMounts(ctx, rec)
	mount.UnmountAll(s.rootfs(rec.ID))
	e.shim = nil
	if rec.HostConfig.AutoRemove {
		// The removal that follows waits for it, alongside its own work.
		e.shimGone = shimGone
	} else {
		<-shimGone
	}
	ranFor := st.FinishedAt.Sub(rec.State.StartedAt)
	rec.State.Pid, rec.State.ExitCode, rec.State.FinishedAt = 0, st.Code, st.FinishedAt
	if rec.State.Status != StatusRemoving {
		rec.State.Status = StatusExited
	}
	s.publish(rec, eventtypes.ActionDie, map[string]string{"exitCode": strconv.Itoa(st.Code)})
	restart := s.shouldRestart(rec)
	if restart {
		rec.State.Status = StatusRestarting
	}
	autoRemove := rec.HostConfig.AutoRemove && rec.State.Status == StatusExited && !e.manualRestart
	if !autoRemove {
		// An auto-removed container's record goes next; should the daemon
		// die first, Restore finds it exited and removes it.
		s.save(e)
	}
	close(e.exited)
	e.exited = make(chan struct{})
	if restart {
		s.scheduleRestart(e, restartDelay(rec.State.RestartCount, ranFor))
	}
	e.mu.Unlock()
	if autoRemove {
		if err := s.ContainerRemove(ctx, rec.ID, RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			s.log.Warn("auto-remove", "container", rec.ID, "err", err)
		}
	}
}

// shouldRestart applies the restart policy to an exit; e.mu is held.
func (s *Service) shouldRestart(rec *Record) bool {
	if rec.State.ManuallyStopped || rec.State.Status == StatusRemoving {
		return false
	}
	p := rec.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return rec.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || rec.State.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// restartDelay is Docker's backoff: 100 ms doubling up to a minute, reset
// when the container had run for 10 s.
func restartDelay(count int, ranFor time.Duration) time.Duration {
	if ranFor >= 10*time.Second {
		return 100 * time.Millisecond
	}
	d := 100 * time.Millisecond
	for i := 0; i < count && d < time.Minute; i++ {
		d *= 2
	}
	return min(d, time.Minute)
}

// scheduleRestart starts the container again after delay unless cancelled
// (by stop, rm or a manual start); e.mu is held.
func (s *Service) scheduleRestart(e *entry, delay time.Duration) {
	ctx, cancel := context.WithCancel(context.Background())
	e.restartCancel = cancel
	go func() {
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		if ctx.Err() != nil || e.rec.State.Status != StatusRestarting {
			return
		}
		e.restartCancel = nil
		e.rec.State.RestartCount++
		if err := s.start(ctx, e); err != nil {
			s.log.Warn("restart failed", "container", e.rec.ID, "err", err)
			e.rec.State.Status = StatusExited
			s.save(e)
		}
	}()
}
