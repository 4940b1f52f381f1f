package task

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"berth/errdefs"
)

// ShimOptions describes the container a new shim creates.
type ShimOptions struct {
	Binary   string   // the berth executable; the shim runs as `<Binary> shim ...`
	ID       string   // container id
	Bundle   string   // OCI bundle directory
	StateDir string   // the shim's state directory (created)
	Runtime  *Runtime // runtime binary and --root
	Tty      bool     // the spec's process.terminal
	Stdin    bool     // keep stdin open for attachers (docker run -i)
	Log      LogConfig
}

func (o ShimOptions) args() []string {
	a := []string{"shim", "--id", o.ID, "--bundle", o.Bundle, "--state-dir", o.StateDir,
		"--runtime", o.Runtime.Binary(), "--runtime-root", o.Runtime.Root(), "--ready-fd", "3"}
	if o.Tty {
		a = append(a, "--tty")
	}
	if o.Stdin {
		a = append(a, "--stdin")
	}
	if o.Log.Path != "" {
		a = append(a, "--log-path", o.Log.Path,
			"--log-max-size", strconv.FormatInt(o.Log.MaxSize, 10))
		if o.Log.MaxFiles > 0 {
			a = append(a, "--log-max-file", strconv.Itoa(o.Log.MaxFiles))
		}
	}
	return a
}

// Shim is the daemon's handle on one container's shim. It holds no
// connection: each call dials the shim's socket, so a Shim survives the
// shim's clients coming and going and Connect rebuilds one after a
// daemon restart.
type Shim struct {
	stateDir string
	pid      int // the shim's pid
	initPid  int
}

// StartShim starts a shim that creates the container and returns once the
// container exists (created, not started). The shim runs in its own
// session; the caller's process only reaps it when it exits.
func StartShim(ctx context.Context, opts ShimOptions) (*Shim, error) {
	p, err := LaunchShim(ctx, opts)
	if err != nil {
		return nil, err
	}
	return p.Create(ctx)
}

// PendingShim is a shim process that has started but waits for Create
// before it touches anything. Launching it early lets the process start-up
// (exec, runtime and package initialisation: several milliseconds) overlap
// the caller's own preparation of the bundle.
type PendingShim struct {
	opts   ShimOptions
	cmd    *exec.Cmd
	goW    *os.File // closed without a word: the shim exits
	readyR *os.File
	logf   string
	// started is closed once the process is started (or failed to be,
	// startErr): the fork and exec do not hold up the caller either.
	started  chan struct{}
	startErr error
}

// LaunchShim starts a shim for opts without letting it create the
// container: call Create once the bundle is complete, or Abort.
func LaunchShim(ctx context.Context, opts ShimOptions) (*PendingShim, error) {
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("shim %s: state dir: %w", opts.ID, err)
	}
	logf, err := os.OpenFile(filepath.Join(opts.StateDir, shimLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("shim %s: log: %w", opts.ID, err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("shim %s: ready pipe: %w", opts.ID, err)
	}
	goR, goW, err := os.Pipe()
	if err != nil {
		closeAll(logf, readyR, readyW)
		return nil, fmt.Errorf("shim %s: go pipe: %w", opts.ID, err)
	}
	cmd := exec.Command(opts.Binary, append(opts.args(), "--go-fd", "4")...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{readyW, goR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	p := &PendingShim{opts: opts, cmd: cmd, goW: goW, readyR: readyR, logf: logf.Name(), started: make(chan struct{})}
	go func() {
		err := cmd.Start()
		// The child has its copies; the parent's would hide its exit.
		closeAll(logf, readyW, goR)
		if err != nil {
			p.startErr = fmt.Errorf("shim %s: start: %w", opts.ID, err)
		}
		close(p.started)
		if err == nil {
			_ = cmd.Wait()
		}
	}()
	return p, nil
}

func closeAll(fs ...*os.File) {
	for _, f := range fs {
		f.Close()
	}
}

// Create lets the shim create the container and returns once it exists.
func (p *PendingShim) Create(ctx context.Context) (*Shim, error) {
	defer p.readyR.Close()
	<-p.started
	if p.startErr != nil {
		p.goW.Close()
		return nil, p.startErr
	}
	_, werr := p.goW.Write([]byte(goWord))
	p.goW.Close()
	if werr != nil {
		return nil, fmt.Errorf("shim %s: %w: %v (see %s)", p.opts.ID, errdefs.ErrUnavailable, werr, p.logf)
	}
	got := make(chan response, 1)
	go func() {
		var resp response
		if err := json.NewDecoder(p.readyR).Decode(&resp); err != nil {
			resp.Error = toWire(fmt.Errorf("shim %s exited before reporting: %w (see %s)",
				p.opts.ID, errdefs.ErrUnavailable, p.logf))
		}
		got <- resp
	}()
	select {
	case resp := <-got:
		if resp.Error != nil {
			return nil, fromWire(resp.Error)
		}
		return &Shim{stateDir: p.opts.StateDir, pid: p.cmd.Process.Pid, initPid: resp.Pid}, nil
	case <-ctx.Done():
		// Undo what the shim may have created: it would otherwise run on
		// with nobody knowing its container.
		_ = p.cmd.Process.Kill()
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.opts.Runtime.Delete(dctx, p.opts.ID, true)
		return nil, fmt.Errorf("shim %s: %w", p.opts.ID, ctx.Err())
	}
}

// Abort ends a shim that was never told to create: it exits having done
// nothing (a process still starting reads end of file at once).
func (p *PendingShim) Abort() {
	closeAll(p.goW, p.readyR)
}

// Connect returns a handle on the shim serving stateDir, for a daemon that
// restarted. It fails with ErrUnavailable when no shim answers; ReadExit
// then tells whether the container exited.
func Connect(ctx context.Context, stateDir string) (*Shim, error) {
	s := &Shim{stateDir: stateDir}
	st, err := s.State(ctx)
	if err != nil {
		return nil, err
	}
	s.pid, s.initPid = st.ShimPid, st.Pid
	return s, nil
}

// Pid is the shim process's pid.
func (s *Shim) Pid() int { return s.pid }

// InitPid is the host pid of the container's init.
func (s *Shim) InitPid() int { return s.initPid }

// StateDir is the shim's state directory.
func (s *Shim) StateDir() string { return s.stateDir }

// dial sends req and reads the response line; the connection and its
// reader are returned for streaming calls, closed otherwise.
func (s *Shim) dial(ctx context.Context, req request, keep bool) (response, *net.UnixConn, *bufio.Reader, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", filepath.Join(s.stateDir, socketFile))
	if err != nil {
		return response{}, nil, nil, fmt.Errorf("shim %s: %w: %v", s.stateDir, errdefs.ErrUnavailable, err)
	}
	conn := c.(*net.UnixConn)
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if err := json.NewEncoder(conn).Encode(req); err != nil {
		conn.Close()
		return response{}, nil, nil, fmt.Errorf("shim %s %s: %w: %v", s.stateDir, req.Op, errdefs.ErrUnavailable, err)
	}
	br := bufio.NewReader(conn)
	var resp response
	line, err := br.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &resp)
	}
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return response{}, nil, nil, fmt.Errorf("shim %s %s: %w", s.stateDir, req.Op, ctx.Err())
		}
		return response{}, nil, nil, fmt.Errorf("shim %s %s: %w: %v", s.stateDir, req.Op, errdefs.ErrUnavailable, err)
	}
	if resp.Error != nil || !keep {
		conn.Close()
		return resp, nil, nil, fromWire(resp.Error)
	}
	return resp, conn, br, nil
}

func (s *Shim) call(ctx context.Context, req request) (response, error) {
	resp, _, _, err := s.dial(ctx, req, false)
	return resp, err
}

// State returns the container's status, pids and exit status if any.
func (s *Shim) State(ctx context.Context) (ShimState, error) {
	resp, err := s.call(ctx, request{Op: opState})
	if err != nil {
		return ShimState{}, err
	}
	if resp.State == nil {
		return ShimState{}, fmt.Errorf("shim %s: %w: empty state", s.stateDir, errdefs.ErrUnavailable)
	}
	return *resp.State, nil
}

// Start runs the created container's process.
func (s *Shim) Start(ctx context.Context) error {
	_, err := s.call(ctx, request{Op: opStart})
	return err
}

// Kill signals the init, or with all every process of the container.
func (s *Shim) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	_, err := s.call(ctx, request{Op: opKill, Signal: int(sig), All: all})
	return err
}

// Wait blocks until the init has exited and its output is drained.
func (s *Shim) Wait(ctx context.Context) (ExitStatus, error) {
	return s.wait(ctx, "")
}

func (s *Shim) wait(ctx context.Context, execID string) (ExitStatus, error) {
	resp, err := s.call(ctx, request{Op: opWait, Exec: execID})
	if err != nil {
		return ExitStatus{}, err
	}
	if resp.Exit == nil {
		return ExitStatus{}, fmt.Errorf("shim %s: %w: wait without status", s.stateDir, errdefs.ErrUnavailable)
	}
	return *resp.Exit, nil
}

// Resize sets the init's pty size.
func (s *Shim) Resize(ctx context.Context, width, height uint16) error {
	_, err := s.call(ctx, request{Op: opResize, Width: width, Height: height})
	return err
}

// Pause freezes the container.
func (s *Shim) Pause(ctx context.Context) error {
	_, err := s.call(ctx, request{Op: opPause})
	return err
}

// Resume thaws the container.
func (s *Shim) Resume(ctx context.Context) error {
	_, err := s.call(ctx, request{Op: opResume})
	return err
}

// Delete removes the container from the runtime (with force even while it
// runs: it is killed) and ends the shim. It returns the exit status.
func (s *Shim) Delete(ctx context.Context, force bool) (ExitStatus, error) {
	resp, err := s.call(ctx, request{Op: opDelete, Force: force})
	if err != nil {
		return ExitStatus{}, err
	}
	if resp.Exit == nil {
		return ExitStatus{}, nil
	}
	return *resp.Exit, nil
}

// copyOut moves the shim's output to the caller's writers: raw for a tty,
// else demultiplexed.
func copyOut(r io.Reader, tty bool, stdout, stderr io.Writer) error {
	if tty {
		if stdout == nil {
			stdout = io.Discard
		}
		_, err := io.Copy(stdout, r)
		return err
	}
	return demux(r, stdout, stderr)
}
