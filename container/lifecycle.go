package container

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"berth/errdefs"
	"berth/mount"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// ParseSignal accepts "TERM", "SIGTERM", "sigterm" or "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", s)
}

func notRunning(rec *Record) error {
	return errdefs.Errorf(errdefs.ErrConflict, "Container %s is not running", rec.ID)
}

// ContainerKill is `kill`: the signal goes to the init; a killed container
// counts as stopped by the user for the restart policy.
func (s *Service) ContainerKill(ctx context.Context, name, signal string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.rec.State.IsRunning() || e.shim == nil {
		return errdefs.Errorf(errdefs.ErrConflict, "Cannot kill container: %s: Container %s is not running", name, e.rec.ID)
	}
	if sig == syscall.SIGKILL {
		e.rec.State.ManuallyStopped = true
		s.save(e)
	}
	if err := e.shim.Kill(ctx, sig, false); err != nil {
		return fmt.Errorf("Cannot kill container: %s: %w", name, err)
	}
	if e.rec.State.Status == StatusPaused && sig == syscall.SIGKILL {
		// A frozen process cannot die: thaw it so the kill lands.
		e.shim.Resume(ctx)
		e.rec.State.Status = StatusRunning
	}
	s.publish(&e.rec, eventtypes.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

// ContainerStop is `stop`: the stop signal, then SIGKILL after the timeout.
func (s *Service) ContainerStop(ctx context.Context, name string, opts StopOptions) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	return s.stop(ctx, e, opts)
}

func (s *Service) stop(ctx context.Context, e *entry, opts StopOptions) error {
	e.mu.Lock()
	if e.restartCancel != nil {
		e.restartCancel()
		e.restartCancel = nil
		if e.rec.State.Status == StatusRestarting {
			e.rec.State.Status = StatusExited
		}
	}
	e.rec.State.ManuallyStopped = true
	s.save(e)
	if !e.rec.State.IsRunning() || e.shim == nil {
		e.mu.Unlock()
		return fmt.Errorf("container %s: %w", e.rec.ID, errdefs.ErrNotModified)
	}
	sig, timeout, err := stopParams(&e.rec, opts)
	if err != nil {
		e.mu.Unlock()
		return err
	}
	shim, exited, paused := e.shim, e.exited, e.rec.State.Status == StatusPaused
	e.mu.Unlock()

	if sig != syscall.SIGKILL && !paused {
		if err := shim.Kill(ctx, sig, false); err == nil && waitChan(ctx, exited, timeout) {
			return nil
		}
	} else if sig != syscall.SIGKILL {
		shim.Kill(ctx, sig, false)
		waitChan(ctx, exited, timeout)
	}
	// The grace period is over: kill everything, and thaw a paused
	// container so the kill can land.
	shim.Kill(ctx, syscall.SIGKILL, true)
	if paused {
		shim.Resume(ctx)
	}
	if !waitChan(ctx, exited, 30*time.Second) {
		return fmt.Errorf("container %s did not exit after SIGKILL: %w", e.rec.ID, errdefs.ErrUnavailable)
	}
	return nil
}

func stopParams(rec *Record, opts StopOptions) (syscall.Signal, time.Duration, error) {
	sig := syscall.SIGTERM
	name := opts.Signal
	if name == "" {
		name = rec.Config.StopSignal
	}
	if name != "" {
		var err error
		if sig, err = ParseSignal(name); err != nil {
			return 0, 0, err
		}
	}
	secs := 10
	if rec.Config.StopTimeout != nil {
		secs = *rec.Config.StopTimeout
	}
	if opts.Timeout != nil {
		secs = *opts.Timeout
	}
	if secs < 0 {
		return sig, 100 * 365 * 24 * time.Hour, nil
	}
	return sig, time.Duration(secs) * time.Second, nil
}

// waitChan reports whether ch closed within d.
func waitChan(ctx context.Context, ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

// ContainerRestart is `restart`: stop if running, then start.
func (s *Service) ContainerRestart(ctx context.Context, name string, opts StopOptions) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	// As dockerd: the exit a restart causes does not remove an --rm
	// container.
	e.mu.Lock()
	e.manualRestart = true
	e.mu.Unlock()
	err = s.stop(ctx, e, opts)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.manualRestart = false
	if err != nil && !errdefs.IsNotModified(err) {
		return err
	}
	if e.rec.State.IsRunning() {
		return nil
	}
	e.rec.State.ManuallyStopped = false
	if err := s.start(ctx, e); err != nil {
		return err
	}
	s.publish(&e.rec, eventtypes.ActionRestart, nil)
	return nil
}

// ContainerPause freezes the container's processes (cgroup freezer).
func (s *Service) ContainerPause(ctx context.Context, name string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.rec.State.Status == StatusPaused:
		return errdefs.Errorf(errdefs.ErrConflict, "Container %s is already paused", e.rec.ID)
	case e.rec.State.Status != StatusRunning || e.shim == nil:
		return notRunning(&e.rec)
	}
	if err := e.shim.Pause(ctx); err != nil {
		return err
	}
	e.rec.State.Status = StatusPaused
	s.save(e)
	s.publish(&e.rec, eventtypes.ActionPause, nil)
	return nil
}

// ContainerUnpause thaws a paused container.
func (s *Service) ContainerUnpause(ctx context.Context, name string) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rec.State.Status != StatusPaused || e.shim == nil {
		return errdefs.Errorf(errdefs.ErrConflict, "Container %s is not paused", e.rec.ID)
	}
	if err := e.shim.Resume(ctx); err != nil {
		return err
	}
	e.rec.State.Status = StatusRunning
	s.save(e)
	s.publish(&e.rec, eventtypes.ActionUnPause, nil)
	return nil
}

// ContainerWait delivers the exit code once condition is met.
func (s *Service) ContainerWait(ctx context.Context, name string, condition container.WaitCondition) (<-chan container.WaitResponse, error) {
	e, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	running := e.rec.State.IsRunning() || e.rec.State.Status == StatusRestarting
	exited, removed := e.exited, e.removed
	e.mu.Unlock()
	out := make(chan container.WaitResponse, 1)
	var wait <-chan struct{}
	switch condition {
	case container.WaitConditionNextExit:
		wait = exited
	case container.WaitConditionRemoved:
		wait = removed
	default:
		if running {
			wait = exited
		}
	}
	go func() {
		defer close(out)
		if wait != nil {
			select {
			case <-wait:
			case <-ctx.Done():
				return
			}
		}
		e.mu.Lock()
		resp := container.WaitResponse{StatusCode: int64(e.rec.State.ExitCode)}
		// As dockerd: a removal is not an error to report to the waiter.
		if e.rec.State.Error != "" && condition != container.WaitConditionRemoved {
			resp.Error = &container.WaitExitError{Message: e.rec.State.Error}
		}
		e.mu.Unlock()
		out <- resp
	}()
	return out, nil
}

// ContainerRemove is `rm`.
func (s *Service) ContainerRemove(ctx context.Context, name string, opts RemoveOptions) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	st := e.rec.State.Status
	e.mu.Unlock()
	switch {
	case st == StatusRemoving:
		return errdefs.Errorf(errdefs.ErrConflict, "removal of container %s is already in progress", name)
	case st == StatusPaused && !opts.Force:
		return errdefs.Errorf(errdefs.ErrConflict, "You cannot remove a paused container %s. Unpause and then stop the container before attempting removal or force remove", e.rec.ID)
	case (st == StatusRunning || st == StatusRestarting) && !opts.Force:
		return errdefs.Errorf(errdefs.ErrConflict, "You cannot remove a running container %s. Stop the container before attempting removal or force remove", e.rec.ID)
	}
	// An exited container has nothing to stop (and stop's record update
	// would be one more commit for a record about to go).
	if opts.Force && (st == StatusRunning || st == StatusPaused || st == StatusRestarting) {
		zero := 0
		if err := s.stop(ctx, e, StopOptions{Signal: "KILL", Timeout: &zero}); err != nil && !errdefs.IsNotModified(err) {
			return err
		}
	}
	if err := s.remove(ctx, e); err != nil || !opts.RemoveVolumes {
		return err
	}
	s.detachMounts(ctx, &e.rec, true)
	return nil
}

func (s *Service) remove(ctx context.Context, e *entry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.rec.State.IsRunning() {
		return errdefs.Errorf(errdefs.ErrConflict, "You cannot remove a running container %s. Stop the container before attempting removal or force remove", e.rec.ID)
	}
	if e.restartCancel != nil {
		e.restartCancel()
		e.restartCancel = nil
	}
	e.rec.State.Status = StatusRemoving
	if err := s.opts.DB.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).Delete([]byte(e.rec.ID))
	}); err != nil {
		e.rec.State.Status = StatusDead
		return err
	}
	mount.UnmountAll(s.rootfs(e.rec.ID))
	// --rm takes the anonymous volumes along, however the removal came.
	s.detachMounts(ctx, &e.rec, e.rec.HostConfig.AutoRemove)
	if err := s.opts.Snapshotter.Remove(ctx, e.rec.Snapshot); err != nil && !errdefs.NotFound(err) {
		s.log.Warn("remove writable layer", "container", e.rec.ID, "err", err)
	}
	os.RemoveAll(s.containerDir(e.rec.ID))
	e.awaitShimGone()
	os.RemoveAll(s.shimDir(e.rec.ID))
	// Last: the network's teardown may still be running since the exit.
	s.teardown(ctx, &e.rec)
	s.release(e)
	s.publish(&e.rec, eventtypes.ActionDestroy, nil)
	close(e.removed)
	if s.opts.Images != nil {
		s.opts.Images.CollectLayers(ctx)
	}
	return nil
}
