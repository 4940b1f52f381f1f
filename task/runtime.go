package task

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/errdefs"
)

// Default runtime binaries, as Debian installs them.
const (
	RuncPath = "/usr/sbin/runc"
	CrunPath = "/usr/bin/crun"
)

// Container statuses as the OCI runtime reports them.
const (
	StatusCreating = "creating"
	StatusCreated  = "created"
	StatusRunning  = "running"
	StatusPaused   = "paused"
	StatusStopped  = "stopped"
)

// Runtime drives an OCI runtime CLI (runc or crun) by exec'ing it. Each
// daemon passes its own root (e.g. <exec-root>/runtime/runc) so daemons on
// one host never see each other's containers.
type Runtime struct {
	binary string
	root   string
}

// NewRuntime returns a driver for binary keeping its state under root.
func NewRuntime(binary, root string) *Runtime {
	return &Runtime{binary: binary, root: root}
}

// Name is the runtime's base name, "runc" or "crun".
func (r *Runtime) Name() string { return filepath.Base(r.binary) }

// Binary is the path of the runtime executable.
func (r *Runtime) Binary() string { return r.binary }

// Root is the runtime's --root state directory.
func (r *Runtime) Root() string { return r.root }

// IO is the stdio handed to a process the runtime starts. Nil entries become
// /dev/null. They are passed as file descriptors, never copied.
type IO struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateOpts configures Create.
type CreateOpts struct {
	PidFile       string // where the runtime writes the init pid
	ConsoleSocket string // unix socket receiving the pty master; the spec must ask for a terminal
	IO            IO     // the init's stdio when there is no terminal
}

// State is what `runc state` prints.
type State struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Create sets up container id from bundle without starting its process.
func (r *Runtime) Create(ctx context.Context, id, bundle string, opts CreateOpts) error {
	args := []string{"create", "--bundle", bundle}
	if opts.PidFile != "" {
		args = append(args, "--pid-file", opts.PidFile)
	}
	if opts.ConsoleSocket != "" {
		args = append(args, "--console-socket", opts.ConsoleSocket)
	}
	_, err := r.run(ctx, "create", id, opts.IO, append(args, id)...)
	return err
}

// Start runs the process of a created container.
func (r *Runtime) Start(ctx context.Context, id string) error {
	_, err := r.run(ctx, "start", id, IO{}, "start", id)
	return err
}

// Kill sends sig to the init process, or with all to every process.
func (r *Runtime) Kill(ctx context.Context, id string, sig syscall.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(ctx, "kill", id, IO{}, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

// Delete removes a stopped container, or any container with force.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.run(ctx, "delete", id, IO{}, append(args, id)...)
	return err
}

// Pause freezes every process of the container.
func (r *Runtime) Pause(ctx context.Context, id string) error {
	_, err := r.run(ctx, "pause", id, IO{}, "pause", id)
	return err
}

// Resume thaws a paused container.
func (r *Runtime) Resume(ctx context.Context, id string) error {
	_, err := r.run(ctx, "resume", id, IO{}, "resume", id)
	return err
}

// State returns the runtime's view of container id.
func (r *Runtime) State(ctx context.Context, id string) (State, error) {
	out, err := r.run(ctx, "state", id, IO{}, "state", id)
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(out, &st); err != nil {
		return State{}, fmt.Errorf("%s state %s: decode: %w", r.Name(), id, err)
	}
	return st, nil
}

// List returns every container under this runtime root.
func (r *Runtime) List(ctx context.Context) ([]State, error) {
	out, err := r.run(ctx, "list", "", IO{}, "list", "--format", "json")
	if err != nil {
		return nil, err
	}
	var sts []State
	if err := json.Unmarshal(bytes.TrimSpace(out), &sts); err != nil && len(bytes.TrimSpace(out)) > 0 {
		return nil, fmt.Errorf("%s list: decode: %w", r.Name(), err)
	}
	return sts, nil
}

// Ps returns the host pids of the container's processes.
func (r *Runtime) Ps(ctx context.Context, id string) ([]int, error) {
	out, err := r.run(ctx, "ps", id, IO{}, "ps", "--format", "json", id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("%s ps %s: decode: %w", r.Name(), id, err)
	}
	return pids, nil
}

// ExecOpts configures Exec.
type ExecOpts struct {
	PidFile       string
	ConsoleSocket string // required by the runtime when the process has a terminal
	Detach        bool   // return once the process runs instead of waiting for it
	IO            IO
}

// Exec starts proc inside the running container id. Without Detach it
// returns when the process exits; the runtime's exit status is then the
// process's and is reported as an *exec.ExitError, not a RuntimeError.
func (r *Runtime) Exec(ctx context.Context, id string, proc *specs.Process, opts ExecOpts) error {
	f, err := os.CreateTemp("", "berth-process-*.json")
	if err != nil {
		return fmt.Errorf("exec %s: process file: %w", id, err)
	}
	defer os.Remove(f.Name())
	if err := json.NewEncoder(f).Encode(proc); err != nil {
		f.Close()
		return fmt.Errorf("exec %s: write process file: %w", id, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("exec %s: write process file: %w", id, err)
	}
	args := []string{"exec", "--process", f.Name()}
	if opts.Detach {
		args = append(args, "--detach")
	}
	if opts.PidFile != "" {
		args = append(args, "--pid-file", opts.PidFile)
	}
	if opts.ConsoleSocket != "" {
		args = append(args, "--console-socket", opts.ConsoleSocket)
	}
	_, err = r.run(ctx, "exec", id, opts.IO, append(args, id)...)
	return err
}

// run execs the runtime with this daemon's root and a private JSON log, and
// turns a failure into a RuntimeError carrying the runtime's last message.
// io is the stdio of the process create and exec start (nil: /dev/null);
// other subcommands' stdout is captured and returned.
func (r *Runtime) run(ctx context.Context, op, id string, io IO, args ...string) ([]byte, error) {
	logf, err := os.CreateTemp("", "berth-"+r.Name()+"-*.log")
	if err != nil {
		return nil, fmt.Errorf("%s %s %s: log file: %w", r.Name(), op, id, err)
	}
	logPath := logf.Name()
	logf.Close()
	defer os.Remove(logPath)

	full := append([]string{"--root", r.root, "--log", logPath, "--log-format", "json"}, args...)
	cmd := exec.CommandContext(ctx, r.binary, full...)
	cmd.Stdin = io.Stdin
	var stdout, stderr bytes.Buffer
	if op == "create" || op == "exec" {
		// The process inherits these: a pipe here would keep cmd.Wait
		// waiting for as long as the container runs. Errors come from the log.
		cmd.Stdout, cmd.Stderr = io.Stdout, io.Stderr
	} else {
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
	}
	runErr := cmd.Run()
	if runErr == nil {
		return stdout.Bytes(), nil
	}
	var exitErr *exec.ExitError
	if op == "exec" && errors.As(runErr, &exitErr) && lastLogError(logPath) == "" {
		// A non-detached exec exits with its process's status.
		return nil, runErr
	}
	if errors.Is(runErr, exec.ErrNotFound) || errors.Is(runErr, os.ErrNotExist) {
		return nil, fmt.Errorf("runtime %s: %w", r.binary, errdefs.ErrNotFound)
	}
	msg := lastLogError(logPath)
	if msg == "" {
		msg = lastLine(stderr.String())
	}
	if msg == "" {
		msg = runErr.Error()
	}
	re := &RuntimeError{Runtime: r.Name(), Op: op, ID: id, Msg: msg}
	re.classify()
	return nil, re
}

// lastLogError returns the message of the last error-level record of a
// runtime's JSON log; runc and crun both write {"level","msg","time"}.
func lastLogError(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	var last string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if rec.Level == "error" || rec.Level == "fatal" {
			last = rec.Msg
		}
	}
	return last
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return strings.TrimSpace(s[i+1:])
	}
	return s
}
