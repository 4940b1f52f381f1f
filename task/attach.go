package task

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/errdefs"
)

// Attachment is a live stream of a process's stdio through its shim.
type Attachment struct {
	conn *net.UnixConn
	done chan struct{}
	err  error
}

// Wait blocks until the process's output has ended (or Close) and returns
// the error that ended copying, if any.
func (a *Attachment) Wait() error {
	<-a.done
	return a.err
}

// Close detaches; the process keeps running.
func (a *Attachment) Close() error {
	return a.conn.Close()
}

func newAttachment(conn *net.UnixConn, br *bufio.Reader, tty bool, stdin io.Reader, stdout, stderr io.Writer) *Attachment {
	a := &Attachment{conn: conn, done: make(chan struct{})}
	if stdin != nil {
		go func() {
			_, _ = io.Copy(conn, stdin)
			_ = conn.CloseWrite()
		}()
	}
	go func() {
		a.err = copyOut(br, tty, stdout, stderr)
		conn.Close()
		close(a.done)
	}()
	return a
}

// AttachOptions selects the streams of an attach. Nil writers are not
// sent; a nil Stdin attaches no input.
type AttachOptions struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// CloseStdin closes the container's stdin when Stdin ends, as Docker's
	// StdinOnce does; otherwise other attachers may still write to it.
	CloseStdin bool
}

// Attach streams the init's stdio. It returns once the shim has registered
// the attachment, so output produced after Start is never missed; for a tty
// container all output arrives on Stdout.
func (s *Shim) Attach(ctx context.Context, opts AttachOptions) (*Attachment, error) {
	req := request{Op: opAttach, Stdin: opts.Stdin != nil, Stdout: opts.Stdout != nil,
		Stderr: opts.Stderr != nil, CloseStdin: opts.CloseStdin}
	resp, conn, br, err := s.dial(ctx, req, true)
	if err != nil {
		return nil, err
	}
	tty := resp.State != nil && resp.State.Tty
	return newAttachment(conn, br, tty, opts.Stdin, opts.Stdout, opts.Stderr), nil
}

// ExecOptions describes a process to start in the running container.
type ExecOptions struct {
	ID             string         // unique among the container's execs
	Process        *specs.Process // Terminal selects a pty
	Stdin          io.Reader      // nil: /dev/null; its end closes the process's stdin
	Stdout, Stderr io.Writer
}

// Exec is a process started by Shim.Exec.
type Exec struct {
	ID      string
	Pid     int
	Streams *Attachment
	shim    *Shim
}

// Exec starts a process in the container and streams its stdio.
func (s *Shim) Exec(ctx context.Context, opts ExecOptions) (*Exec, error) {
	if opts.Process == nil {
		return nil, fmt.Errorf("exec %s: %w: no process", opts.ID, errdefs.ErrInvalidArgument)
	}
	req := request{Op: opExec, Exec: opts.ID, Process: opts.Process, Stdin: opts.Stdin != nil}
	resp, conn, br, err := s.dial(ctx, req, true)
	if err != nil {
		return nil, err
	}
	a := newAttachment(conn, br, opts.Process.Terminal, opts.Stdin, opts.Stdout, opts.Stderr)
	return &Exec{ID: opts.ID, Pid: resp.Pid, Streams: a, shim: s}, nil
}

// Wait blocks until the exec'd process exits.
func (e *Exec) Wait(ctx context.Context) (ExitStatus, error) {
	return e.shim.wait(ctx, e.ID)
}

// Resize sets the exec's pty size.
func (e *Exec) Resize(ctx context.Context, width, height uint16) error {
	_, err := e.shim.call(ctx, request{Op: opResize, Exec: e.ID, Width: width, Height: height})
	return err
}

// Kill signals the exec'd process.
func (e *Exec) Kill(ctx context.Context, sig syscall.Signal) error {
	_, err := e.shim.call(ctx, request{Op: opKill, Exec: e.ID, Signal: int(sig)})
	return err
}
