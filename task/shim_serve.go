package task

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// serve answers clients until a delete, then removes the socket.
func (s *shim) serve() {
	go func() {
		for {
			conn, err := s.ln.AcceptUnix()
			if err != nil {
				return
			}
			go s.handle(conn)
		}
	}()
	<-s.shutdown
	s.ln.Close()
}

func (s *shim) handle(conn *net.UnixConn) {
	defer conn.Close()
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeResponse(conn, response{Error: toWire(fmt.Errorf("shim request: %w: %v", errdefs.ErrInvalidArgument, err))})
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	switch req.Op {
	case opAttach:
		s.attach(conn, br, req)
	case opExec:
		s.exec(ctx, conn, br, req)
	default:
		resp, err := s.dispatch(ctx, req)
		resp.Error = toWire(err)
		writeResponse(conn, resp)
		if req.Op == opDelete && err == nil {
			s.shutdownOnce.Do(func() { close(s.shutdown) })
		}
	}
}

func writeResponse(conn net.Conn, resp response) {
	_ = json.NewEncoder(conn).Encode(resp)
}

func (s *shim) dispatch(ctx context.Context, req request) (response, error) {
	switch req.Op {
	case opState:
		st := s.state()
		return response{State: &st}, nil
	case opStart:
		return response{}, s.start(ctx)
	case opKill:
		return response{}, s.kill(ctx, req)
	case opWait:
		st, err := s.wait(ctx, req.Exec)
		return response{Exit: &st}, err
	case opResize:
		return response{}, s.resize(req)
	case opPause, opResume:
		return response{}, s.pause(ctx, req.Op == opPause)
	case opDelete:
		return s.delete(ctx, req.Force)
	}
	return response{}, fmt.Errorf("shim op %q: %w", req.Op, errdefs.ErrInvalidArgument)
}

func (s *shim) state() ShimState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return ShimState{ID: s.cfg.id, Status: s.status, Pid: s.pid, ShimPid: os.Getpid(), Tty: s.cfg.tty, Exit: s.exit}
}

// transition moves status from one of from to to, or explains why not.
func (s *shim) transition(to string, from ...string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range from {
		if s.status == f {
			s.status = to
			return nil
		}
	}
	return errdefs.Errorf(errdefs.ErrConflict, "container %s is %s", s.cfg.id, s.status)
}

func (s *shim) start(ctx context.Context) error {
	if err := s.transition(StatusRunning, StatusCreated); err != nil {
		return err
	}
	if err := s.rt.Start(ctx, s.cfg.id); err != nil {
		_ = s.transition(StatusCreated, StatusRunning)
		return err
	}
	return nil
}

func (s *shim) pause(ctx context.Context, pause bool) error {
	if pause {
		if err := s.transition(StatusPaused, StatusRunning); err != nil {
			return err
		}
		if err := s.rt.Pause(ctx, s.cfg.id); err != nil {
			_ = s.transition(StatusRunning, StatusPaused)
			return err
		}
		return nil
	}
	if err := s.transition(StatusRunning, StatusPaused); err != nil {
		return err
	}
	if err := s.rt.Resume(ctx, s.cfg.id); err != nil {
		_ = s.transition(StatusPaused, StatusRunning)
		return err
	}
	return nil
}

func (s *shim) kill(ctx context.Context, req request) error {
	sig := syscall.Signal(req.Signal)
	if req.Exec != "" {
		ep, err := s.execProc(req.Exec)
		if err != nil {
			return err
		}
		select {
		case <-ep.exited:
			return errdefs.Errorf(errdefs.ErrConflict, "exec %s is not running", req.Exec)
		default:
		}
		if err := unix.Kill(ep.pid, sig); err != nil {
			return fmt.Errorf("kill exec %s: %w", req.Exec, err)
		}
		return nil
	}
	select {
	case <-s.exited:
		return errdefs.Errorf(errdefs.ErrConflict, "container %s is not running", s.cfg.id)
	default:
	}
	return s.rt.Kill(ctx, s.cfg.id, sig, req.All)
}

func (s *shim) wait(ctx context.Context, execID string) (ExitStatus, error) {
	if execID != "" {
		ep, err := s.execProc(execID)
		if err != nil {
			return ExitStatus{}, err
		}
		<-ep.exited
		return ep.exit, nil
	}
	<-s.exited
	s.mu.Lock()
	defer s.mu.Unlock()
	return *s.exit, nil
}

func (s *shim) resize(req request) error {
	pty := s.console
	if req.Exec != "" {
		ep, err := s.execProc(req.Exec)
		if err != nil {
			return err
		}
		pty = ep.console
	}
	if pty == nil {
		return fmt.Errorf("resize: %w: process has no tty", errdefs.ErrFailedPrecondition)
	}
	return resizePty(pty, req.Width, req.Height)
}

// delete removes the container from the runtime; the shim exits after
// answering. A running or paused container needs force.
func (s *shim) delete(ctx context.Context, force bool) (response, error) {
	st := s.state()
	if !force && st.Status != StatusStopped && st.Status != StatusCreated {
		return response{}, errdefs.Errorf(errdefs.ErrConflict,
			"container %s is %s: stop it before deleting or force", s.cfg.id, st.Status)
	}
	if err := s.rt.Delete(ctx, s.cfg.id, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return response{}, err
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		return response{}, fmt.Errorf("delete %s: init did not exit: %w", s.cfg.id, errdefs.ErrUnavailable)
	}
	st = s.state()
	return response{Exit: st.Exit}, nil
}
