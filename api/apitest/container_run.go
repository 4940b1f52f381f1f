package apitest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"
)

// fakeRun is one run of a container's (or an exec's) program: its stdin
// pipe, the attached output streams and the signals sent to it.
type fakeRun struct {
	tty     bool
	stdin   *io.PipeReader
	stdinW  *io.PipeWriter
	signals chan syscall.Signal
	done    chan struct{} // closed once the program ended
	log     func(stream string, b []byte)

	mu      sync.Mutex
	outs    []*attachment
	exit    int
	started bool
}

// attachment is one attached client's output streams; gone is closed when
// a write to it fails, which ends that attach.
type attachment struct {
	stdout, stderr io.Writer
	gone           chan struct{}
	once           sync.Once
}

func newRun(tty, openStdin bool, log func(string, []byte)) *fakeRun {
	r := &fakeRun{tty: tty, signals: make(chan syscall.Signal, 8), done: make(chan struct{}), log: log}
	r.stdin, r.stdinW = io.Pipe()
	if !openStdin {
		r.stdinW.Close()
	}
	return r
}

func (r *fakeRun) attach(stdout, stderr io.Writer) *attachment {
	a := &attachment{stdout: stdout, stderr: stderr, gone: make(chan struct{})}
	r.mu.Lock()
	r.outs = append(r.outs, a)
	r.mu.Unlock()
	return a
}

func (r *fakeRun) detach(a *attachment) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range r.outs {
		if o == a {
			r.outs = append(r.outs[:i], r.outs[i+1:]...)
			return
		}
	}
}

// write delivers program output: a pty turns "\n" into "\r\n" and merges
// stderr into stdout.
func (r *fakeRun) write(stream string, b []byte) {
	if r.tty {
		b = []byte(strings.ReplaceAll(string(b), "\n", "\r\n"))
		stream = "stdout"
	}
	if r.log != nil {
		r.log(stream, b)
	}
	r.mu.Lock()
	outs := append([]*attachment(nil), r.outs...)
	r.mu.Unlock()
	for _, a := range outs {
		w := a.stdout
		if stream == "stderr" {
			w = a.stderr
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(b); err != nil {
			a.once.Do(func() { close(a.gone) })
		}
	}
}

// appendLog records output as log lines; s.mu must not be held.
func (s *Containers) appendLog(c *fakeContainer, stream string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for len(b) > 0 {
		i := strings.IndexByte(string(b), '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		c.logs = append(c.logs, berthcontainer.LogEntry{Stream: stream, Line: append([]byte(nil), line...), Time: now})
		b = b[len(line):]
	}
	close(c.logged)
	c.logged = make(chan struct{})
}

// ContainerStart runs the container's program. A program that does not
// exist fails the start as runc would, with the exit code Docker records.
func (s *Containers) ContainerStart(_ context.Context, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return err
	}
	switch {
	case c.running():
		return fmt.Errorf("container %s: already started: %w", c.id, errdefs.ErrNotModified)
	case c.status == container.StateRemoving || c.status == container.StateDead:
		return errdefs.Errorf(errdefs.ErrConflict, "container is marked for removal and cannot be started")
	}
	argv := c.argv()
	prog, code, err := lookupProgram(argv[0])
	if err != nil {
		c.exitCode, c.errMsg = code, err.Error()
		if c.host.AutoRemove {
			s.remove(c)
		}
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: %s: unknown", err.Error())
	}
	run := newRun(c.config.Tty, c.config.OpenStdin, func(stream string, b []byte) { s.appendLog(c, stream, b) })
	c.run = run
	s.pids++
	c.status, c.pid, c.exitCode, c.errMsg = container.StateRunning, 4000+s.pids, 0, ""
	c.startedAt, c.finishedAt = s.now(), time.Time{}
	for _, p := range c.pending {
		p.got <- attached{run: run, a: run.attach(p.stdout, p.stderr)}
	}
	c.pending = nil
	s.publish(c, eventtypes.ActionStart, nil)
	env := append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=" + c.config.Hostname, "HOME=/root"}, c.config.Env...)
	go s.execute(c, run, prog, argv, env)
	return nil
}

// execute runs prog and records its exit.
func (s *Containers) execute(c *fakeContainer, run *fakeRun, prog program, argv, env []string) {
	code := prog(&procIO{run: run, args: argv[1:], env: env, fs: c.fs})
	run.stdin.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	run.mu.Lock()
	run.exit = code
	run.mu.Unlock()
	close(run.done)
	c.status, c.exitCode, c.pid, c.finishedAt = container.StateExited, code, 0, s.now()
	close(c.exited)
	c.exited = make(chan struct{})
	s.killExecs(c)
	close(c.logged)
	c.logged = make(chan struct{})
	s.publish(c, eventtypes.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
	if c.host.AutoRemove {
		s.remove(c)
	}
}

// parseSignal reads "KILL", "SIGKILL" or "9".
func parseSignal(sig string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(sig); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(sig)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if n := unix.SignalNum(name); n != 0 {
		return n, nil
	}
	return 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid signal: %s", sig)
}

// signal delivers sig to c's program; s.mu is held.
func (s *Containers) signal(c *fakeContainer, sig syscall.Signal) {
	s.publish(c, eventtypes.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	select {
	case c.run.signals <- sig:
	default:
	}
}

// ContainerKill signals the program; SIGKILL waits for the exit.
func (s *Containers) ContainerKill(ctx context.Context, name, sig string) error {
	if sig == "" {
		sig = "KILL"
	}
	n, err := parseSignal(sig)
	if err != nil {
		return err
	}
	s.mu.Lock()
	c, err := s.find(name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if !c.running() {
		s.mu.Unlock()
		return errdefs.Errorf(errdefs.ErrConflict, "Cannot kill container: %s: Container %s is not running", name, c.id)
	}
	run := c.run
	s.signal(c, n)
	s.mu.Unlock()
	if n == syscall.SIGKILL {
		select {
		case <-run.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// ContainerStop sends the stop signal, then SIGKILL after the timeout.
func (s *Containers) ContainerStop(ctx context.Context, name string, opts berthcontainer.StopOptions) error {
	s.mu.Lock()
	c, err := s.find(name)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if !c.running() {
		s.mu.Unlock()
		return fmt.Errorf("container %s: already stopped: %w", c.id, errdefs.ErrNotModified)
	}
	sigName := opts.Signal
	if sigName == "" {
		sigName = c.config.StopSignal
	}
	if sigName == "" {
		sigName = "TERM"
	}
	sig, err := parseSignal(sigName)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	timeout := 10
	if c.config.StopTimeout != nil {
		timeout = *c.config.StopTimeout
	}
	if opts.Timeout != nil {
		timeout = *opts.Timeout
	}
	run := c.run
	s.signal(c, sig)
	s.mu.Unlock()
	if err := waitDone(ctx, run.done, timeout); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
		s.mu.Lock()
		s.signal(c, syscall.SIGKILL)
		s.mu.Unlock()
		<-run.done
	}
	s.mu.Lock()
	s.publish(c, eventtypes.ActionStop, nil)
	s.mu.Unlock()
	return nil
}

// waitDone waits for done for timeout seconds (negative: for ever).
func waitDone(ctx context.Context, done <-chan struct{}, timeout int) error {
	if timeout >= 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Second)
		defer cancel()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ContainerRestart stops (if running) and starts again.
func (s *Containers) ContainerRestart(ctx context.Context, name string, opts berthcontainer.StopOptions) error {
	if err := s.ContainerStop(ctx, name, opts); err != nil && !errors.Is(err, errdefs.ErrNotModified) {
		return err
	}
	s.mu.Lock()
	if c, err := s.find(name); err == nil {
		c.restartCount++
	}
	s.mu.Unlock()
	return s.ContainerStart(ctx, name)
}

// ContainerPause and ContainerUnpause move between running and paused.
func (s *Containers) ContainerPause(_ context.Context, name string) error {
	return s.pause(name, true)
}

// ContainerUnpause resumes a paused container.
func (s *Containers) ContainerUnpause(_ context.Context, name string) error {
	return s.pause(name, false)
}

func (s *Containers) pause(name string, pause bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return err
	}
	switch {
	case !c.running():
		return errdefs.Errorf(errdefs.ErrConflict, "Container %s is not running", c.id)
	case pause && c.status == container.StatePaused:
		return errdefs.Errorf(errdefs.ErrConflict, "Container %s is already paused", c.id)
	case !pause && c.status != container.StatePaused:
		return errdefs.Errorf(errdefs.ErrConflict, "Container %s is not paused", c.id)
	}
	if pause {
		c.status = container.StatePaused
		s.publish(c, eventtypes.ActionPause, nil)
		return nil
	}
	c.status = container.StateRunning
	s.publish(c, eventtypes.ActionUnPause, nil)
	return nil
}

// ContainerWait delivers the exit code when cond is met.
func (s *Containers) ContainerWait(ctx context.Context, name string, cond container.WaitCondition) (<-chan container.WaitResponse, error) {
	s.mu.Lock()
	c, err := s.find(name)
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	out := make(chan container.WaitResponse, 1)
	if cond == container.WaitConditionNotRunning && !c.running() {
		out <- container.WaitResponse{StatusCode: int64(c.exitCode)}
		s.mu.Unlock()
		return out, nil
	}
	event := c.exited
	if cond == container.WaitConditionRemoved {
		event = c.removed
	}
	s.mu.Unlock()
	go func() {
		select {
		case <-event:
			s.mu.Lock()
			code := c.exitCode
			s.mu.Unlock()
			out <- container.WaitResponse{StatusCode: int64(code)}
		case <-ctx.Done():
			close(out)
		}
	}()
	return out, nil
}
