package task

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"time"

	"berth/errdefs"
)

// execProc is a process started in the running container by exec.
type execProc struct {
	pid     int
	console *os.File
	exited  chan struct{}
	exit    ExitStatus
}

func (s *shim) execProc(id string) (*execProc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ep, ok := s.execs[id]
	if !ok || ep == nil {
		return nil, fmt.Errorf("exec %s: %w", id, errdefs.ErrNotFound)
	}
	return ep, nil
}

// reserveExec claims id for a new exec in a running container.
func (s *shim) reserveExec(id string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.status != StatusRunning {
		return 0, errdefs.Errorf(errdefs.ErrConflict, "container %s is %s", s.cfg.id, s.status)
	}
	if _, ok := s.execs[id]; ok {
		return 0, fmt.Errorf("exec %s: %w", id, errdefs.ErrAlreadyExists)
	}
	s.execs[id] = nil
	s.seq++
	return s.seq, nil
}

// exec starts req.Process in the container and streams its stdio over
// conn; its exit status is kept for wait requests naming the exec.
func (s *shim) exec(ctx context.Context, conn net.Conn, br *bufio.Reader, req request) {
	if req.Exec == "" || req.Process == nil {
		writeResponse(conn, response{Error: toWire(fmt.Errorf("exec: %w: id and process required", errdefs.ErrInvalidArgument))})
		return
	}
	seq, err := s.reserveExec(req.Exec)
	if err != nil {
		writeResponse(conn, response{Error: toWire(err)})
		return
	}
	ep, outputs, stdin, err := s.startExec(ctx, req, seq)
	s.mu.Lock()
	if err != nil {
		delete(s.execs, req.Exec)
	} else {
		s.execs[req.Exec] = ep
	}
	s.mu.Unlock()
	if err != nil {
		writeResponse(conn, response{Error: toWire(err)})
		return
	}
	a := newAttacher(conn, req.Process.Terminal, true, true)
	if err := a.respond(response{Pid: ep.pid}); err != nil {
		a.drop()
	}
	done := make(chan struct{})
	pumpAll(outputs, a.send, done)
	go func() {
		if stdin != nil {
			_, _ = io.Copy(stdin, br)
			if stdin != ep.console {
				stdin.Close()
			}
		}
	}()
	<-done
	a.drop()
}

// startExec has the runtime start the process detached, with pipes or a
// pty held by the shim, and watches its exit.
func (s *shim) startExec(ctx context.Context, req request, seq int) (*execProc, []*os.File, *os.File, error) {
	ep := &execProc{exited: make(chan struct{})}
	pidPath := s.path("exec-" + strconv.Itoa(seq) + ".pid")
	defer os.Remove(pidPath)
	opts := ExecOpts{PidFile: pidPath, Detach: true}
	var outputs []*os.File
	var stdin *os.File
	if req.Process.Terminal {
		master, err := createWithConsole(ctx, s.path("c"+strconv.Itoa(seq)+".sock"), func(ctx context.Context, sock string) error {
			opts.ConsoleSocket = sock
			return s.rt.Exec(ctx, s.cfg.id, req.Process, opts)
		})
		if err != nil {
			return nil, nil, nil, err
		}
		ep.console, outputs = master, []*os.File{master}
		if req.Stdin {
			stdin = master
		}
	} else {
		var err error
		if outputs, stdin, err = s.execPiped(ctx, req, opts); err != nil {
			return nil, nil, nil, err
		}
	}
	pid, err := readPid(pidPath)
	if err != nil {
		for _, f := range outputs {
			f.Close()
		}
		return nil, nil, nil, err
	}
	ep.pid = pid
	go func() {
		ws := <-s.reaper.watch(pid)
		ep.exit = exitStatusOf(pid, ws, time.Now())
		close(ep.exited)
	}()
	return ep, outputs, stdin, nil
}

func (s *shim) execPiped(ctx context.Context, req request, opts ExecOpts) ([]*os.File, *os.File, error) {
	var child, parent []*os.File
	defer func() {
		for _, f := range child {
			f.Close()
		}
	}()
	fail := func(err error) ([]*os.File, *os.File, error) {
		for _, f := range parent {
			f.Close()
		}
		return nil, nil, err
	}
	var stdin *os.File
	if req.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("exec stdin pipe: %w", err))
		}
		child, parent, stdin, opts.IO.Stdin = append(child, r), append(parent, w), w, r
	}
	var outputs []*os.File
	for _, dst := range []**os.File{&opts.IO.Stdout, &opts.IO.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(fmt.Errorf("exec output pipe: %w", err))
		}
		child, parent, outputs, *dst = append(child, w), append(parent, r), append(outputs, r), w
	}
	if err := s.rt.Exec(ctx, s.cfg.id, req.Process, opts); err != nil {
		return fail(err)
	}
	return outputs, stdin, nil
}
