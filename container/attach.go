package container

import (
	"context"
	"fmt"
	"io"
	"strings"

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
	keys, err := parseDetachKeys(streams.DetachKeys)
	if err != nil {
		return err
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
	var detector *detachReader
	if streams.Stdin != nil {
		detector = &detachReader{r: streams.Stdin, keys: keys, signal: make(chan struct{})}
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
		detached = detector.detached()
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

// parseDetachKeys reads Docker's detach-keys syntax: "ctrl-p,ctrl-q", or
// single characters.
func parseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return []byte{16, 17}, nil
	}
	var out []byte
	for _, k := range strings.Split(s, ",") {
		if c, ok := strings.CutPrefix(strings.ToLower(k), "ctrl-"); ok && len(c) == 1 {
			switch ch := c[0]; {
			case ch >= 'a' && ch <= 'z':
				out = append(out, ch-'a'+1)
			case ch == '@':
				out = append(out, 0)
			case ch >= '[' && ch <= '_':
				out = append(out, ch-'['+27)
			default:
				return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid escape keys (%s) provided", s)
			}
			continue
		}
		if len(k) != 1 {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid escape keys (%s) provided", s)
		}
		out = append(out, k[0])
	}
	return out, nil
}

// detachReader passes stdin through until the detach sequence is typed. A
// partial match is held back and released if the sequence breaks.
type detachReader struct {
	r       io.Reader
	keys    []byte
	matched int
	held    []byte
	signal  chan struct{}
}

func (d *detachReader) detached() <-chan struct{} { return d.signal }

func (d *detachReader) Read(p []byte) (int, error) {
	// Leave room for held-back bytes released by a broken sequence.
	buf := make([]byte, max(1, len(p)-len(d.keys)))
	n, err := d.r.Read(buf)
	out := p[:0]
	for _, b := range buf[:n] {
		if b == d.keys[d.matched] {
			d.matched++
			d.held = append(d.held, b)
			if d.matched == len(d.keys) {
				close(d.signal)
				return len(out), fmt.Errorf("read escape sequence: %w", io.EOF)
			}
			continue
		}
		out = append(out, d.held...)
		d.held, d.matched = d.held[:0], 0
		out = append(out, b)
	}
	return len(out), err
}
