package apitest

import (
	"context"
	"errors"
	"io"

	berthcontainer "berth/container"
	"berth/detachkeys"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// pendingAttach is an attacher waiting for a created container to start;
// the start registers its streams before the program runs, so no output
// is lost.
type pendingAttach struct {
	stdout, stderr io.Writer
	got            chan attached
}

type attached struct {
	run *fakeRun
	a   *attachment
}

// ContainerAttach replays the log if asked, then follows the current run,
// or the next one of a stopped container, until it ends, the client goes
// away or types the detach keys.
func (s *Containers) ContainerAttach(ctx context.Context, name string, streams berthcontainer.AttachStreams) error {
	keys, err := detachkeys.Parse(streams.DetachKeys)
	if err != nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid detach keys (%s) provided", streams.DetachKeys)
	}
	s.mu.Lock()
	c, err := s.find(name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if streams.Logs {
		replay := append([]berthcontainer.LogEntry(nil), c.logs...)
		s.mu.Unlock()
		for _, e := range replay {
			w := streams.Stdout
			if e.Stream == "stderr" {
				w = streams.Stderr
			}
			if w != nil {
				if _, err := w.Write(e.Line); err != nil {
					return err
				}
			}
		}
		s.mu.Lock()
	}
	if !streams.Stream {
		s.mu.Unlock()
		return nil
	}
	at, err := s.attachRun(ctx, c, streams)
	if err != nil {
		return err
	}
	defer at.run.detach(at.a)
	detached := make(chan struct{})
	if streams.Stdin != nil && openStdin(c) {
		go copyStdin(at.run, detachkeys.NewReader(streams.Stdin, keys), c.config.StdinOnce && !c.config.Tty, detached)
	}
	select {
	case <-at.run.done:
		return nil
	case <-at.a.gone:
		return nil
	case <-detached:
		return berthcontainer.ErrDetached
	case <-ctx.Done():
		return ctx.Err()
	}
}

func openStdin(c *fakeContainer) bool { return c.config.OpenStdin }

// attachRun registers the streams on the running program or queues them
// for the next start. s.mu is held on entry and released.
func (s *Containers) attachRun(ctx context.Context, c *fakeContainer, streams berthcontainer.AttachStreams) (attached, error) {
	switch {
	case c.running():
		run := c.run
		s.publish(c, eventtypes.ActionAttach, nil)
		s.mu.Unlock()
		a := run.attach(streams.Stdout, streams.Stderr)
		notifyAttached(streams)
		return attached{run: run, a: a}, nil
	case c.status == container.StateRemoving || c.status == container.StateDead:
		s.mu.Unlock()
		return attached{}, errdefs.Errorf(errdefs.ErrConflict, "You cannot attach to a stopped container, start it first")
	}
	// A created or exited container is attached to as it next starts:
	// that is how `start -a` sees the output of a restarted container.
	p := &pendingAttach{stdout: streams.Stdout, stderr: streams.Stderr, got: make(chan attached, 1)}
	c.pending = append(c.pending, p)
	s.publish(c, eventtypes.ActionAttach, nil)
	s.mu.Unlock()
	notifyAttached(streams)
	select {
	case at := <-p.got:
		return at, nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		for i, o := range c.pending {
			if o == p {
				c.pending = append(c.pending[:i], c.pending[i+1:]...)
			}
		}
		select {
		case at := <-p.got: // handed over just before we gave up
			at.run.detach(at.a)
		default:
		}
		return attached{}, ctx.Err()
	}
}

func notifyAttached(streams berthcontainer.AttachStreams) {
	if streams.Attached != nil {
		streams.Attached()
	}
}

// copyStdin feeds the client's input to the program; EOF closes the
// program's stdin when closeOnEOF (StdinOnce without a tty: with a tty the
// end of input travels through the terminal, and a client that detaches
// by closing its connection must not end the container), and the detach
// keys end the session.
func copyStdin(run *fakeRun, in *detachkeys.Reader, closeOnEOF bool, detached chan<- struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := run.stdinW.Write(buf[:n]); werr != nil {
				return
			}
		}
		if errors.Is(err, detachkeys.ErrDetached) {
			close(detached)
			return
		}
		if err != nil {
			if closeOnEOF {
				run.stdinW.Close()
			}
			return
		}
	}
}
