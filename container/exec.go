package container

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"berth/container/spec"
	"berth/errdefs"
	"berth/task"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// execEntry is one `exec`: created, then started once.
type execEntry struct {
	mu          sync.Mutex
	id          string
	containerID string
	req         container.ExecCreateRequest
	running     bool
	started     bool
	exitCode    *int
	pid         int
	proc        *task.Exec
}

// ExecCreate registers a process to run in a running container.
func (s *Service) ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error) {
	e, err := s.lookup(name)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	switch {
	case e.rec.State.Status == StatusPaused:
		return "", errdefs.Errorf(errdefs.ErrConflict, "Container %s is paused, unpause the container before exec", e.rec.ID)
	case !e.rec.State.IsRunning():
		return "", notRunning(&e.rec)
	case len(req.Cmd) == 0:
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "No exec command specified")
	}
	x := &execEntry{id: newID(), containerID: e.rec.ID, req: req}
	s.mu.Lock()
	s.execs[x.id] = x
	s.mu.Unlock()
	s.publish(&e.rec, eventtypes.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": x.id})
	return x.id, nil
}

func (s *Service) lookupExec(id string) (*execEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, ok := s.execs[id]
	if !ok {
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "No such exec instance: %s", id)
	}
	return x, nil
}

// ExecStart runs the exec and, unless detached, streams its stdio until it
// exits.
func (s *Service) ExecStart(ctx context.Context, execID string, opts ExecStartOptions) error {
	x, err := s.lookupExec(execID)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if x.started {
		x.mu.Unlock()
		return errdefs.Errorf(errdefs.ErrConflict, "Error: Exec command %s has already run", execID)
	}
	x.started = true
	x.mu.Unlock()
	e, err := s.lookup(x.containerID)
	if err != nil {
		return err
	}
	proc, err := s.startExec(ctx, e, x, opts)
	if err != nil {
		return err
	}
	if opts.Detach {
		go s.reapExec(e, x, proc)
		return nil
	}
	if proc.Streams != nil {
		proc.Streams.Wait()
	}
	s.reapExec(e, x, proc)
	return nil
}

func (s *Service) startExec(ctx context.Context, e *entry, x *execEntry, opts ExecStartOptions) (*task.Exec, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.rec.State.IsRunning() || e.shim == nil {
		return nil, notRunning(&e.rec)
	}
	user := e.rec.Config.User
	if x.req.User != "" {
		user = x.req.User
	}
	u, err := spec.ResolveUser(s.rootfs(e.rec.ID), user, e.rec.HostConfig.GroupAdd)
	if err != nil {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", err.Error())
	}
	in := spec.ExecInput{
		Config: e.rec.Config, HostConfig: e.rec.HostConfig, Hostname: e.rec.Config.Hostname, User: u,
		Cmd: x.req.Cmd, Env: x.req.Env, WorkingDir: x.req.WorkingDir, Tty: x.req.Tty, Privileged: x.req.Privileged,
		CapLastCap: s.host.lastCap, HostBounding: s.host.bounding, HostRlimits: s.host.rlimits,
	}
	if opts.ConsoleSize != nil {
		in.ConsoleSize = *opts.ConsoleSize
	} else if x.req.ConsoleSize != nil {
		in.ConsoleSize = *x.req.ConsoleSize
	}
	proc, err := spec.ExecProcess(in)
	if err != nil {
		return nil, err
	}
	st := opts.Streams
	if opts.Detach {
		st = AttachStreams{}
	}
	p, err := e.shim.Exec(ctx, task.ExecOptions{ID: x.id, Process: proc, Stdin: st.Stdin, Stdout: st.Stdout, Stderr: st.Stderr})
	if err != nil {
		if code, ok := task.ExecFailureCode(err); ok {
			x.mu.Lock()
			x.exitCode = &code
			x.mu.Unlock()
		}
		return nil, err
	}
	x.mu.Lock()
	x.running, x.pid, x.proc = true, p.Pid, p
	x.mu.Unlock()
	s.publish(&e.rec, eventtypes.Action("exec_start: "+strings.Join(x.req.Cmd, " ")), map[string]string{"execID": x.id})
	return p, nil
}

func (s *Service) reapExec(e *entry, x *execEntry, p *task.Exec) {
	st, err := p.Wait(context.Background())
	code := st.Code
	if err != nil {
		code = 126
	}
	x.mu.Lock()
	x.running, x.exitCode = false, &code
	x.mu.Unlock()
	e.mu.Lock()
	s.publish(&e.rec, eventtypes.ActionExecDie, map[string]string{"execID": x.id, "exitCode": fmt.Sprint(code)})
	e.mu.Unlock()
}

// ExecInspect reports an exec's state and exit code.
func (s *Service) ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error) {
	x, err := s.lookupExec(execID)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	resp := container.ExecInspectResponse{
		ID: x.id, ContainerID: x.containerID, Running: x.running, Pid: x.pid,
		OpenStdin: x.req.AttachStdin, OpenStdout: x.req.AttachStdout, OpenStderr: x.req.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: x.req.Tty, Privileged: &x.req.Privileged, User: x.req.User},
	}
	if len(x.req.Cmd) > 0 {
		resp.ProcessConfig.Entrypoint, resp.ProcessConfig.Arguments = x.req.Cmd[0], x.req.Cmd[1:]
	}
	if x.exitCode != nil {
		code := *x.exitCode
		resp.ExitCode = &code
	}
	return resp, nil
}

// ExecResize resizes an exec's pty.
func (s *Service) ExecResize(ctx context.Context, execID string, height, width uint) error {
	x, err := s.lookupExec(execID)
	if err != nil {
		return err
	}
	x.mu.Lock()
	p := x.proc
	x.mu.Unlock()
	if p == nil {
		return errdefs.Errorf(errdefs.ErrConflict, "Exec %s is not running", execID)
	}
	return p.Resize(ctx, uint16(width), uint16(height))
}
