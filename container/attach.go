package container

import (
	"context"
	"io"
	"strings"

	"berth/detachkeys"
	"berth/errdefs"
	"berth/task"

	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerAttach connects the caller's streams to the container's stdio.
// A container that has not started yet is attached to as it starts, before
// its process runs, so `run` sees all output.
func (s *Service) ContainerAttach(ctx context.Context, name string, streams AttachStreams) error {
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	keys, err := detachkeys.Parse(streams.DetachKeys)
	if err != nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid detach keys (%s) provided", streams.DetachKeys)
	}
	if streams.Logs {
		if err := s.replayLogs(ctx, name, streams); err != nil {
			return err
		}
	}
	if !streams.Stream {
		return nil
	}
	// Read what is needed now: a start hands us the shim while holding
	// e.mu and waits until we attached, so we must not take e.mu after.
	e.mu.Lock()
	// With a tty, the end of input comes through the terminal: stdin is
	// closed on the client's EOF only for StdinOnce without one (dockerd).
	stdinOnce := e.rec.Config.StdinOnce && !e.rec.Config.Tty
	rec := e.rec
	e.mu.Unlock()
	shim, done, err := s.shimForAttach(ctx, e, streams.Attached)
	if err != nil {
		return err
	}
	s.publish(&rec, eventtypes.ActionAttach, nil)
	var stdin io.Reader
	var detector *detachkeys.Reader
	if streams.Stdin != nil {
		detector = detachkeys.NewReader(streams.Stdin, keys)
		stdin = detector
	}
	att, err := shim.Attach(ctx, task.AttachOptions{Stdin: stdin, Stdout: streams.Stdout, Stderr: streams.Stderr, CloseStdin: stdinOnce})
	if done != nil {
		close(done)
	} else if err == nil && streams.Attached != nil {
		streams.Attached() // attached to a running container
	}
	if err != nil {
		return err
	}
	finished := make(chan error, 1)
	go func() { finished <- att.Wait() }()
	var detached <-chan struct{}
	if detector != nil {
		detached = detector.Detached()
	}
	select {
	case err := <-finished:
		return ignoreClosed(err)
	case <-detached:
		att.Close()
		return ErrDetached
	case <-ctx.Done():
		att.Close()
		return ctx.Err()
	}
}

func ignoreClosed(err error) error {
	if err != nil && strings.Contains(err.Error(), "use of closed network connection") {
		return nil
	}
	return err
}

// shimForAttach returns the running shim, or waits for the next start of
// a created container (calling queued once it is registered); done (when
// not nil) must be closed once attached.
func (s *Service) shimForAttach(ctx context.Context, e *entry, queued func()) (*task.Shim, chan struct{}, error) {
	e.mu.Lock()
	switch {
	case e.rec.State.IsRunning() && e.shim != nil:
		shim := e.shim
		e.mu.Unlock()
		return shim, nil, nil
	case e.rec.State.Status == StatusRemoving || e.rec.State.Status == StatusDead:
		e.mu.Unlock()
		return nil, nil, errdefs.Errorf(errdefs.ErrConflict, "You cannot attach to a stopped container, start it first")
	}
	ch := make(chan pendingStart, 1)
	e.pending = append(e.pending, ch)
	e.mu.Unlock()
	if queued != nil {
		queued() // the next start hands us the shim before the process runs
	}
	select {
	case p := <-ch:
		return p.shim, p.done, nil
	case <-ctx.Done():
		e.mu.Lock()
		for i, w := range e.pending {
			if w == ch {
				e.pending = append(e.pending[:i], e.pending[i+1:]...)
				break
			}
		}
		e.mu.Unlock()
		select {
		case p := <-ch: // handed over just before we left
			close(p.done)
		default:
		}
		return nil, nil, ctx.Err()
	}
}

func (s *Service) replayLogs(ctx context.Context, name string, streams AttachStreams) error {
	entries, _, err := s.ContainerLogs(ctx, name, LogsOptions{Stdout: streams.Stdout != nil, Stderr: streams.Stderr != nil, Tail: -1})
	if err != nil {
		return err
	}
	for ent := range entries {
		w := streams.Stdout
		if ent.Stream == "stderr" {
			w = streams.Stderr
		}
		if w != nil {
			w.Write(ent.Line)
		}
	}
	return nil
}
