package apitest

import (
	"context"
	"strconv"
	"strings"
	"syscall"

	berthcontainer "berth/container"
	"berth/detachkeys"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// fakeExec is one exec: created, then started once.
type fakeExec struct {
	id       string
	c        *fakeContainer
	req      container.ExecCreateRequest
	started  bool
	running  bool
	exitCode *int
	pid      int
	run      *fakeRun
}

// ExecCreate registers a command to run in a running container.
func (s *Containers) ExecCreate(_ context.Context, name string, req container.ExecCreateRequest) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return "", err
	}
	switch {
	case c.status == container.StatePaused:
		return "", errdefs.Errorf(errdefs.ErrConflict, "Container %s is paused, unpause the container before exec", c.id)
	case !c.running():
		return "", notRunning(c)
	case len(req.Cmd) == 0:
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "No exec command specified")
	}
	if _, err := detachkeys.Parse(req.DetachKeys); err != nil {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid escape keys (%s) provided", req.DetachKeys)
	}
	x := &fakeExec{id: fakeID("exec", len(s.execs)), c: c, req: req}
	s.execs[x.id] = x
	c.execIDs = append(c.execIDs, x.id)
	s.publish(c, eventtypes.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": x.id})
	return x.id, nil
}

func (s *Containers) findExec(id string) (*fakeExec, error) {
	x, ok := s.execs[id]
	if !ok {
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "No such exec instance: %s", id)
	}
	return x, nil
}

// ExecStart runs the exec's program; attached, it streams until the
// program ends.
func (s *Containers) ExecStart(ctx context.Context, execID string, opts berthcontainer.ExecStartOptions) error {
	s.mu.Lock()
	x, err := s.findExec(execID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	run, prog, err := s.startExec(x)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	var a *attachment
	detached := make(chan struct{})
	if !opts.Detach {
		a = run.attach(opts.Streams.Stdout, opts.Streams.Stderr)
		if opts.Streams.Stdin != nil && x.req.AttachStdin {
			keys, _ := detachkeys.Parse(x.req.DetachKeys)
			go copyStdin(run, detachkeys.NewReader(opts.Streams.Stdin, keys), !x.req.Tty, detached)
		}
	}
	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + x.c.config.Hostname, "HOME=/root"}, x.c.config.Env...)
	env = append(env, x.req.Env...)
	go s.executeExec(x, run, prog, env)
	s.mu.Unlock()
	if opts.Detach {
		return nil
	}
	defer run.detach(a)
	select {
	case <-run.done:
		return nil
	case <-a.gone:
		return nil
	case <-detached:
		return berthcontainer.ErrDetached
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startExec checks and marks x started; s.mu is held.
func (s *Containers) startExec(x *fakeExec) (*fakeRun, program, error) {
	if x.started {
		return nil, nil, errdefs.Errorf(errdefs.ErrConflict, "Error: Exec command %s has already run", x.id)
	}
	if !x.c.running() {
		return nil, nil, notRunning(x.c)
	}
	x.started = true
	prog, code, err := lookupProgram(x.req.Cmd[0])
	if err != nil {
		x.exitCode = &code
		return nil, nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "OCI runtime exec failed: exec failed: unable to start container process: %s: unknown", err.Error())
	}
	s.pids++
	x.running, x.pid = true, 4000+s.pids
	x.run = newRun(x.req.Tty, x.req.AttachStdin, nil)
	s.publish(x.c, eventtypes.Action("exec_start: "+strings.Join(x.req.Cmd, " ")), map[string]string{"execID": x.id})
	return x.run, prog, nil
}

func (s *Containers) executeExec(x *fakeExec, run *fakeRun, prog program, env []string) {
	code := prog(&procIO{run: run, args: x.req.Cmd[1:], env: env, fs: x.c.fs})
	run.stdin.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	x.running, x.exitCode, x.pid = false, &code, 0
	close(run.done)
	s.publish(x.c, eventtypes.ActionExecDie, map[string]string{"execID": x.id, "exitCode": strconv.Itoa(code)})
}

// killExecs ends the execs of a container whose main program exited, as
// the kernel does when the pid namespace's init dies; s.mu is held.
func (s *Containers) killExecs(c *fakeContainer) {
	for _, x := range s.execs {
		if x.c == c && x.running {
			select {
			case x.run.signals <- syscall.SIGKILL:
			default:
			}
		}
	}
}

// ExecInspect describes an exec.
func (s *Containers) ExecInspect(_ context.Context, execID string) (container.ExecInspectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.findExec(execID)
	if err != nil {
		return container.ExecInspectResponse{}, err
	}
	keys, _ := detachkeys.Parse(x.req.DetachKeys)
	privileged := x.req.Privileged
	return container.ExecInspectResponse{
		ID: x.id, Running: x.running, ExitCode: x.exitCode, ContainerID: x.c.id, Pid: x.pid, DetachKeys: keys,
		OpenStdin: x.req.AttachStdin, OpenStdout: x.req.AttachStdout, OpenStderr: x.req.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{
			Tty: x.req.Tty, Entrypoint: x.req.Cmd[0], Arguments: append([]string{}, x.req.Cmd[1:]...), Privileged: &privileged, User: x.req.User,
		},
	}, nil
}

// ExecResize accepts a resize of a running exec.
func (s *Containers) ExecResize(_ context.Context, execID string, _, _ uint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	x, err := s.findExec(execID)
	if err != nil {
		return err
	}
	if !x.running {
		return errdefs.Errorf(errdefs.ErrConflict, "Exec %s is not running", x.id)
	}
	return nil
}
