package task

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// attachWriteTimeout bounds how long a stalled attacher may hold up the
// container's output (and its log) before it is dropped.
const attachWriteTimeout = 10 * time.Second

// attacher is one client connection receiving a process's output.
type attacher struct {
	conn           net.Conn
	tty            bool
	stdout, stderr bool

	mu   sync.Mutex // keeps frames whole and after the response line
	gone chan struct{}
	once sync.Once
}

func newAttacher(conn net.Conn, tty, stdout, stderr bool) *attacher {
	return &attacher{conn: conn, tty: tty, stdout: stdout, stderr: stderr, gone: make(chan struct{})}
}

func (a *attacher) drop() {
	a.once.Do(func() {
		close(a.gone)
		a.conn.Close()
	})
}

// send writes a chunk of stream ("stdout" or "stderr"), framed unless tty.
func (a *attacher) send(stream string, p []byte) {
	if (stream == "stdout" && !a.stdout) || (stream == "stderr" && !a.stderr) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_ = a.conn.SetWriteDeadline(time.Now().Add(attachWriteTimeout))
	var err error
	if a.tty {
		_, err = a.conn.Write(p)
	} else {
		no := byte(streamStdout)
		if stream == "stderr" {
			no = streamStderr
		}
		err = writeFrame(a.conn, no, p)
	}
	if err != nil {
		a.drop()
	}
}

// respond writes the response line that precedes the stream.
func (a *attacher) respond(resp response) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return json.NewEncoder(a.conn).Encode(resp)
}

// pump reads f until EOF (or EIO from a pty whose other side is gone) and
// hands each chunk to sink.
func pump(f *os.File, stream string, sink func(stream string, p []byte)) {
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			sink(stream, buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// pumpAll pumps outputs (stdout, then stderr) and closes done when all end.
func pumpAll(outputs []*os.File, sink func(string, []byte), done chan struct{}) {
	streams := []string{"stdout", "stderr"}
	var wg sync.WaitGroup
	for i, f := range outputs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			pump(f, streams[i], sink)
		}()
	}
	go func() {
		wg.Wait()
		close(done)
	}()
}

func (s *shim) pumpInit(outputs []*os.File) {
	pumpAll(outputs, s.output, s.outputDone)
}

// output logs a chunk of the init's output and fans it out to attachers.
func (s *shim) output(stream string, p []byte) {
	if s.jlog != nil {
		if err := s.jlog.write(stream, p, time.Now()); err != nil {
			s.log.Error("log", "err", err)
		}
	}
	s.mu.Lock()
	list := make([]*attacher, 0, len(s.attachers))
	for a := range s.attachers {
		list = append(list, a)
	}
	s.mu.Unlock()
	for _, a := range list {
		a.send(stream, p)
	}
}

// attach streams the init's output to conn until it ends or the client
// goes, and feeds what the client sends to the init's stdin.
func (s *shim) attach(conn net.Conn, br *bufio.Reader, req request) {
	a := newAttacher(conn, s.cfg.tty, req.Stdout, req.Stderr)
	a.mu.Lock()
	s.mu.Lock()
	s.attachers[a] = struct{}{}
	s.mu.Unlock()
	st := s.state()
	err := json.NewEncoder(conn).Encode(response{State: &st})
	a.mu.Unlock()
	if err != nil {
		a.drop()
	}
	go s.attachStdin(a, br, req)
	select {
	case <-s.outputDone:
	case <-a.gone:
	}
	s.mu.Lock()
	delete(s.attachers, a)
	s.mu.Unlock()
	a.drop()
}

func (s *shim) attachStdin(a *attacher, br *bufio.Reader, req request) {
	if !req.Stdin || s.stdin == nil {
		// The client's end of the connection only tells us it went away.
		_, _ = io.Copy(io.Discard, br)
		a.drop()
		return
	}
	_, _ = io.Copy(s.stdin, br)
	if req.CloseStdin {
		s.closeStdin()
	}
}
