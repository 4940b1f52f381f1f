package api

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"berth/errdefs"

	"github.com/moby/moby/api/types"
)

// Stream ids of the multiplexed framing (Docker's stdcopy): every frame is
// an 8-byte header {stream, 0, 0, 0, big-endian uint32 length} and the
// payload. streamSystemErr carries a daemon error that ends the stream.
const (
	streamStdout    byte = 1
	streamStderr    byte = 2
	streamSystemErr byte = 3
)

// maxFrame bounds one frame's payload so a huge write cannot make a
// receiver allocate it all at once.
const maxFrame = 32 << 10

// muxWriter frames writes for one stream of a shared connection. Writers of
// the same connection share mu, so frames never interleave.
type muxWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	stream byte
}

func (m *muxWriter) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	written := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), maxFrame)]
		var hdr [8]byte
		hdr[0] = m.stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(chunk)))
		if _, err := m.w.Write(hdr[:]); err != nil {
			return written, err
		}
		n, err := m.w.Write(chunk)
		written += n
		if err != nil {
			return written, err
		}
		p = p[len(chunk):]
	}
	if f, ok := m.w.(http.Flusher); ok {
		f.Flush()
	}
	return written, nil
}

// lockedWriter serialises raw (tty) writes from several goroutines.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.w.Write(p)
	if f, ok := l.w.(http.Flusher); ok {
		f.Flush()
	}
	return n, err
}

// outputs are the stdout and stderr writers of one response: frames of a
// multiplexed stream, or the same raw writer twice for a tty.
type outputs struct {
	mu          sync.Mutex
	multiplexed bool
	w           io.Writer
}

func newOutputs(w io.Writer, multiplexed bool) *outputs {
	return &outputs{w: w, multiplexed: multiplexed}
}

func (o *outputs) stdout() io.Writer {
	if o.multiplexed {
		return &muxWriter{mu: &o.mu, w: o.w, stream: streamStdout}
	}
	return &lockedWriter{mu: &o.mu, w: o.w}
}

func (o *outputs) stderr() io.Writer {
	if o.multiplexed {
		return &muxWriter{mu: &o.mu, w: o.w, stream: streamStderr}
	}
	return &lockedWriter{mu: &o.mu, w: o.w}
}

// fail reports an error that happened after the response started: as a
// system-error frame that clients' demultiplexers return as an error, or
// as a line of text on a raw stream, which is all a tty client can show.
func (o *outputs) fail(err error) {
	msg := err.Error()
	if o.multiplexed {
		w := &muxWriter{mu: &o.mu, w: o.w, stream: streamSystemErr}
		_, _ = w.Write([]byte(msg))
		return
	}
	_, _ = o.stdout().Write([]byte(msg + "\r\n"))
}

// streamMediaType is the Content-Type of an attach, exec or logs stream.
// API 1.42 introduced a distinct type for the multiplexed framing; older
// clients expect the raw type for both.
func streamMediaType(version string, multiplexed bool) string {
	if multiplexed && compareVersions(version, "1.42") >= 0 {
		return types.MediaTypeMultiplexedStream
	}
	return types.MediaTypeRawStream
}

// hijacked is a connection taken over from the HTTP server for an
// interactive stream. Reads must go through in: the server may already
// have buffered bytes the client sent right after its request.
//
// ctx replaces the request's context, which net/http cancels as soon as a
// read of the connection fails: a client half-closing its side to signal
// the end of stdin would otherwise end the whole session.
type hijacked struct {
	conn   net.Conn
	in     *bufio.Reader
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards out and closed
	out    *bufio.Writer
	closed bool
}

// Write sends p at once: interactive output must not sit in a buffer.
func (h *hijacked) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return 0, net.ErrClosed
	}
	n, err := h.out.Write(p)
	if err != nil {
		return n, err
	}
	return n, h.out.Flush()
}

// Close ends the session; a backend writing late gets an error.
func (h *hijacked) Close() error {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	_ = h.out.Flush()
	return h.conn.Close()
}

// hijack takes the connection over and sends the status line. A client
// that asked for "Upgrade: tcp" (the docker CLI and the moby client do)
// gets 101 Switching Protocols; others get a plain 200 as from dockerd,
// after which both sides speak the stream. The server's common headers
// (Api-Version, Server...) travel with the status as on any response.
func hijack(w http.ResponseWriter, r *http.Request, mediaType string) (*hijacked, error) {
	inner := w
	rw, wrapped := w.(*responseWriter)
	if wrapped {
		inner = rw.ResponseWriter
	}
	hj, ok := inner.(http.Hijacker)
	if !ok {
		return nil, fmt.Errorf("hijack %s: the connection cannot be taken over: %w", r.URL.Path, errdefs.ErrInvalidArgument)
	}
	conn, bufrw, err := hj.Hijack()
	if err != nil {
		return nil, fmt.Errorf("hijack %s: %w", r.URL.Path, err)
	}
	if wrapped {
		// From here on the server must not write an HTTP error: failures
		// can only be reported in the stream.
		rw.wroteHeader = true
	}
	// A session lasts as long as the user keeps it; server timeouts meant
	// for requests must not cut it.
	_ = conn.SetDeadline(time.Time{})
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	h := &hijacked{conn: conn, in: bufrw.Reader, out: bufrw.Writer, ctx: ctx, cancel: cancel}
	var head string
	if r.Header.Get("Upgrade") != "" {
		head = "HTTP/1.1 101 UPGRADED\r\nContent-Type: " + mediaType + "\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	} else {
		head = "HTTP/1.1 200 OK\r\nContent-Type: " + types.MediaTypeRawStream + "\r\n"
	}
	hdr := w.Header().Clone()
	hdr.Del("Content-Type")
	var b strings.Builder
	b.WriteString(head)
	_ = hdr.Write(&b)
	b.WriteString("\r\n")
	if _, err := h.Write([]byte(b.String())); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// lazyWriter sends the 200 status with its headers on the first write, so
// a backend that fails before producing anything still gets a plain HTTP
// error with its own status.
type lazyWriter struct {
	w       http.ResponseWriter
	header  http.Header
	started bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.start()
	}
	return l.w.Write(p)
}

func (l *lazyWriter) start() {
	l.started = true
	for k, v := range l.header {
		l.w.Header()[k] = v
	}
	l.w.WriteHeader(http.StatusOK)
}

// flushWriter flushes after every write: for streams a client follows.
type flushWriter struct {
	w http.ResponseWriter
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}
