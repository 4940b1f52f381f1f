package api

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync"
	"time"

	berthcontainer "berth/container"
	"berth/errdefs"
)

// attachGrace bounds how long the answer to an attach waits for a backend
// that never reports AttachStreams.Attached; such a backend is answered
// anyway, at the risk of the race the hook exists to close.
const attachGrace = 250 * time.Millisecond

// attachContainer connects the connection to the container's streams. The
// 101 answer is sent only once the backend has connected the streams (or
// writes, reads or returns), so that a client starting the container
// right after attach returns sees all output, and an attach the backend
// refuses is still a plain HTTP error.
func (s *server) attachContainer(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	doc, err := s.opts.Containers.ContainerInspect(r.Context(), req.name, false)
	if err != nil {
		return err
	}
	if st := doc.State; st != nil {
		switch {
		case st.Paused:
			return errdefs.Errorf(errdefs.ErrConflict, "You cannot attach to a paused container, unpause it first")
		case st.Restarting:
			return errdefs.Errorf(errdefs.ErrConflict, "You cannot attach to a restarting container, wait until it is running")
		}
	}
	tty := doc.Config != nil && doc.Config.Tty
	conn := &lateConn{ready: make(chan struct{}), open: func() (*hijacked, error) {
		return hijack(w, r, streamMediaType(req.version, !tty))
	}}
	out := newOutputs(conn, !tty)
	streams := attachStreams(q, conn, out)
	// The request's context ends when a read of the hijacked connection
	// fails, as a half-close for the end of stdin does; the session must
	// outlive that.
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	defer cancel()
	result := make(chan error, 1)
	go func() { result <- s.opts.Containers.ContainerAttach(ctx, doc.ID, streams) }()
	grace := time.NewTimer(attachGrace)
	defer grace.Stop()
	select {
	case <-conn.ready:
	case <-grace.C:
		conn.connect()
	case err := <-result:
		if !conn.connected() && err != nil && !errors.Is(err, berthcontainer.ErrDetached) {
			return err
		}
		result <- err
		conn.connect()
	}
	if conn.err != nil {
		cancel()
		<-result
		return nil
	}
	defer conn.h.Close()
	err = <-result
	if err != nil && !errors.Is(err, berthcontainer.ErrDetached) {
		s.log.DebugContext(r.Context(), "attach ended", "container", doc.ID, "err", err)
		out.fail(err)
	}
	return nil
}

// attachStreams are the streams the query asks for, on conn.
func attachStreams(q url.Values, conn *lateConn, out *outputs) berthcontainer.AttachStreams {
	streams := berthcontainer.AttachStreams{
		DetachKeys: q.Get("detachKeys"),
		Logs:       boolValue(q, "logs"),
		Stream:     boolValue(q, "stream"),
		Attached:   conn.connect,
	}
	if boolValue(q, "stdin") {
		streams.Stdin = conn
	}
	if boolValue(q, "stdout") {
		streams.Stdout = out.stdout()
	}
	if boolValue(q, "stderr") {
		streams.Stderr = out.stderr()
	}
	return streams
}

// lateConn is an attach's connection before and after the hijack: reads
// and writes wait for it, and the first of them (or connect) performs it.
type lateConn struct {
	once  sync.Once
	ready chan struct{}
	open  func() (*hijacked, error)
	h     *hijacked
	err   error
}

func (l *lateConn) connect() {
	l.once.Do(func() {
		l.h, l.err = l.open()
		close(l.ready)
	})
}

func (l *lateConn) connected() bool {
	select {
	case <-l.ready:
		return true
	default:
		return false
	}
}

func (l *lateConn) Write(p []byte) (int, error) {
	l.connect()
	if l.err != nil {
		return 0, l.err
	}
	return l.h.Write(p)
}

func (l *lateConn) Read(p []byte) (int, error) {
	l.connect()
	if l.err != nil {
		return 0, l.err
	}
	return l.h.in.Read(p)
}
