package api

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

func (s *server) addExecRoutes() {
	s.handle(http.MethodPost, "/containers/{name}/exec", s.createExec)
	s.handle(http.MethodPost, "/exec/{name}/start", s.startExec)
	s.handle(http.MethodPost, "/exec/{name}/resize", s.resizeExec)
	s.handle(http.MethodGet, "/exec/{name}/json", s.inspectExec)
}

func decodeBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid JSON: %s", err.Error())
	}
	return nil
}

func (s *server) createExec(w http.ResponseWriter, r *http.Request, req request) error {
	var body container.ExecCreateRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if len(body.Cmd) == 0 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "No exec command specified")
	}
	if body.ConsoleSize != nil && !body.Tty {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "console size is only supported when TTY is enabled")
	}
	id, err := s.opts.Containers.ExecCreate(r.Context(), req.name, body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
	return nil
}

// startExec runs a created exec. Detached, it answers once the process
// started; attached, it hijacks the connection like attach and streams
// until the process ends. An exec that fails to start after the hijack
// reports the failure as a line on the stream, where the client reads it.
func (s *server) startExec(w http.ResponseWriter, r *http.Request, req request) error {
	var body container.ExecStartRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if body.ConsoleSize != nil && !body.Tty {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "console size is only supported when TTY is enabled")
	}
	ex, err := s.opts.Containers.ExecInspect(r.Context(), req.name)
	if err != nil {
		return err
	}
	opts := berthcontainer.ExecStartOptions{Detach: body.Detach, Tty: body.Tty, ConsoleSize: body.ConsoleSize}
	if body.Detach {
		if err := s.opts.Containers.ExecStart(r.Context(), req.name, opts); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if ex.Running || ex.ExitCode != nil {
		return errdefs.Errorf(errdefs.ErrConflict, "Error: Exec command %s has already run", ex.ID)
	}
	conn, err := hijack(w, r, streamMediaType(req.version, !body.Tty))
	if err != nil {
		return err
	}
	defer conn.Close()
	out := newOutputs(conn, !body.Tty)
	if ex.OpenStdin {
		opts.Streams.Stdin = conn.in
	}
	if ex.OpenStdout {
		opts.Streams.Stdout = out.stdout()
	}
	if ex.OpenStderr {
		opts.Streams.Stderr = out.stderr()
	}
	opts.Streams.Stream = true
	err = s.opts.Containers.ExecStart(conn.ctx, req.name, opts)
	if err != nil && !errors.Is(err, berthcontainer.ErrDetached) {
		s.log.DebugContext(r.Context(), "exec ended", "exec", req.name, "err", err)
		_, _ = out.stdout().Write([]byte(err.Error() + "\r\n"))
	}
	return nil
}

func (s *server) resizeExec(w http.ResponseWriter, r *http.Request, req request) error {
	h, wd, err := terminalSize(r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.opts.Containers.ExecResize(r.Context(), req.name, h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *server) inspectExec(w http.ResponseWriter, r *http.Request, req request) error {
	ex, err := s.opts.Containers.ExecInspect(r.Context(), req.name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, ex)
	return nil
}
