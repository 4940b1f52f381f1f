package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// shimConfig is the parsed command line of `berth shim`.
type shimConfig struct {
	id, bundle, stateDir string
	runtime, runtimeRoot string
	tty, stdin           bool
	log                  LogConfig
	readyFD, goFD        int
}

// ShimMain runs `berth shim` and returns its exit status. The daemon starts
// one per container (see StartShim); it creates the container and then
// serves the protocol of protocol.go on <state-dir>/shim.sock until a
// delete. Arguments:
//
//	--id ID                 container id (required)
//	--bundle DIR            OCI bundle holding config.json (required)
//	--state-dir DIR         shim state: shim.sock, init.pid, exit.json (required)
//	--runtime PATH          OCI runtime binary (default /usr/sbin/runc)
//	--runtime-root DIR      the runtime's --root (required)
//	--tty                   give the init a pty (the spec must set process.terminal)
//	--stdin                 keep the init's stdin open for attachers
//	--log-path FILE         Docker json-file log of stdout and stderr
//	--log-max-size BYTES    rotate the log at this size (0: never)
//	--log-max-file N        log files kept when rotating (default 3)
//	--ready-fd FD           write one JSON line (init pid or error) here once created
//	--go-fd FD              wait for "create" on FD before creating (EOF: exit 1)
//
// Exit status: 0 after a delete, 1 when the container could not be created
// or served, 2 for bad arguments.
func ShimMain(args []string) int {
	cfg, err := parseShimArgs(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "berth shim:", err)
		return 2
	}
	// Own session and process group so the daemon's exit, a ^C in its
	// terminal or a signal to its group never reaches the shim.
	_, _ = unix.Setsid()
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "berth shim: subreaper:", err)
		return 1
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("id", cfg.id)
	if cfg.goFD > 0 && !awaitGo(cfg.goFD) {
		return 1 // launched ahead, then not wanted: nothing was made
	}
	s := newShim(cfg, log)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	err = s.create(ctx)
	cancel()
	if err != nil {
		// Undo before reporting, so the caller finds nothing left behind.
		log.Error("create", "err", err)
		s.teardown()
		s.reportReady(err)
		return 1
	}
	s.reportReady(nil)
	s.serve()
	return 0
}

// awaitGo blocks until the launcher says create (true) or goes away.
func awaitGo(fd int) bool {
	f := os.NewFile(uintptr(fd), "go")
	defer f.Close()
	b, _ := io.ReadAll(io.LimitReader(f, int64(len(goWord))))
	return string(b) == goWord
}

func parseShimArgs(args []string) (shimConfig, error) {
	var c shimConfig
	fs := flag.NewFlagSet("shim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.id, "id", "", "")
	fs.StringVar(&c.bundle, "bundle", "", "")
	fs.StringVar(&c.stateDir, "state-dir", "", "")
	fs.StringVar(&c.runtime, "runtime", RuncPath, "")
	fs.StringVar(&c.runtimeRoot, "runtime-root", "", "")
	fs.BoolVar(&c.tty, "tty", false, "")
	fs.BoolVar(&c.stdin, "stdin", false, "")
	fs.StringVar(&c.log.Path, "log-path", "", "")
	fs.Int64Var(&c.log.MaxSize, "log-max-size", 0, "")
	fs.IntVar(&c.log.MaxFiles, "log-max-file", DefaultLogMaxFiles, "")
	fs.IntVar(&c.readyFD, "ready-fd", 0, "")
	fs.IntVar(&c.goFD, "go-fd", 0, "")
	if err := fs.Parse(args); err != nil {
		return c, fmt.Errorf("arguments: %w: %v", errdefs.ErrInvalidArgument, err)
	}
	if c.id == "" || c.bundle == "" || c.stateDir == "" || c.runtimeRoot == "" {
		return c, fmt.Errorf("arguments: %w: --id, --bundle, --state-dir and --runtime-root are required",
			errdefs.ErrInvalidArgument)
	}
	return c, nil
}

// shim is the state of one container's shim process.
type shim struct {
	cfg    shimConfig
	rt     *Runtime
	log    *slog.Logger
	reaper *reaper
	ln     *net.UnixListener
	jlog   *jsonLog

	stdin      *os.File // write end of the init's stdin, or the pty master
	console    *os.File // pty master when cfg.tty
	outputDone chan struct{}
	exited     chan struct{}
	shutdown   chan struct{}

	mu           sync.Mutex
	status       string
	pid          int
	exit         *ExitStatus
	attachers    map[*attacher]struct{}
	execs        map[string]*execProc
	stdinOnce    sync.Once
	shutdownOnce sync.Once
	seq          int
}

func newShim(cfg shimConfig, log *slog.Logger) *shim {
	return &shim{
		cfg: cfg, rt: NewRuntime(cfg.runtime, cfg.runtimeRoot), log: log, reaper: newReaper(),
		outputDone: make(chan struct{}), exited: make(chan struct{}), shutdown: make(chan struct{}),
		status: StatusCreating, attachers: map[*attacher]struct{}{}, execs: map[string]*execProc{},
	}
}

func (s *shim) path(name string) string { return filepath.Join(s.cfg.stateDir, name) }

// create listens on the shim socket and has the runtime create the
// container with the shim holding the other end of its stdio.
func (s *shim) create(ctx context.Context) error {
	if err := os.MkdirAll(s.cfg.stateDir, 0o700); err != nil {
		return fmt.Errorf("shim state dir: %w", err)
	}
	sock := s.path(socketFile)
	_ = os.Remove(sock)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		return fmt.Errorf("shim socket: %w", err)
	}
	s.ln = ln
	if s.cfg.log.Path != "" {
		if s.jlog, err = openJSONLog(s.cfg.log); err != nil {
			return err
		}
	}
	opts := CreateOpts{PidFile: s.path(pidFile)}
	var outputs []*os.File
	if s.cfg.tty {
		err = s.createTty(ctx, opts)
		outputs = []*os.File{s.console}
	} else {
		outputs, err = s.createPiped(ctx, opts)
	}
	if err != nil {
		return err
	}
	pid, err := readPid(opts.PidFile)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.pid, s.status = pid, StatusCreated
	s.mu.Unlock()
	s.pumpInit(outputs)
	go s.awaitInit(s.reaper.watch(pid))
	return nil
}

func (s *shim) createPiped(ctx context.Context, opts CreateOpts) ([]*os.File, error) {
	var child []*os.File
	defer func() {
		for _, f := range child {
			f.Close()
		}
	}()
	if s.cfg.stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("stdin pipe: %w", err)
		}
		child, s.stdin, opts.IO.Stdin = append(child, r), w, r
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("stdout pipe: %w", err)
	}
	child = append(child, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		return nil, fmt.Errorf("stderr pipe: %w", err)
	}
	child = append(child, errW)
	opts.IO.Stdout, opts.IO.Stderr = outW, errW
	if err := s.rt.Create(ctx, s.cfg.id, s.cfg.bundle, opts); err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	return []*os.File{outR, errR}, nil
}

func (s *shim) createTty(ctx context.Context, opts CreateOpts) error {
	master, err := createWithConsole(ctx, s.path("console.sock"), func(ctx context.Context, sock string) error {
		opts.ConsoleSocket = sock
		return s.rt.Create(ctx, s.cfg.id, s.cfg.bundle, opts)
	})
	if err != nil {
		return err
	}
	s.console = master
	if s.cfg.stdin {
		s.stdin = master
	}
	return nil
}

// createWithConsole runs create while receiving the pty master on a console
// socket at path; the runtime blocks until it has handed the master over.
func createWithConsole(ctx context.Context, path string, create func(context.Context, string) error) (*os.File, error) {
	cs, err := newConsoleSocket(path)
	if err != nil {
		return nil, err
	}
	defer cs.close()
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		f   *os.File
		err error
	}
	got := make(chan result, 1)
	go func() {
		f, err := cs.receive(rctx)
		got <- result{f, err}
	}()
	if err := create(ctx, path); err != nil {
		cancel()
		if r := <-got; r.f != nil {
			r.f.Close()
		}
		return nil, err
	}
	r := <-got
	return r.f, r.err
}

func readPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %w: %q", path, errdefs.ErrInvalidArgument, b)
	}
	return pid, nil
}

// awaitInit records the init's exit once its output has drained, so that
// attachers have everything before waiters learn of the exit.
func (s *shim) awaitInit(ws <-chan syscall.WaitStatus) {
	w := <-ws
	st := exitStatusOf(s.pid, w, time.Now())
	select {
	case <-s.outputDone:
	case <-time.After(5 * time.Second):
		// Something outside the container's pid namespace holds its stdio.
		s.log.Warn("output still open after exit")
	}
	if s.jlog != nil {
		if err := s.jlog.close(time.Now()); err != nil {
			s.log.Error("close log", "err", err)
		}
	}
	s.closeStdin()
	b, _ := json.Marshal(st)
	if err := writeFileAtomic(s.path(exitFile), b); err != nil {
		s.log.Error("record exit", "err", err)
	}
	s.mu.Lock()
	s.status, s.exit = StatusStopped, &st
	s.mu.Unlock()
	close(s.exited)
}

func (s *shim) closeStdin() {
	s.stdinOnce.Do(func() {
		if s.stdin != nil && s.stdin != s.console {
			s.stdin.Close()
		}
	})
}

// reportReady tells the process that started the shim whether the
// container exists, as one response line on the ready fd.
func (s *shim) reportReady(err error) {
	if s.cfg.readyFD <= 0 {
		return
	}
	f := os.NewFile(uintptr(s.cfg.readyFD), "ready")
	defer f.Close()
	resp := response{Error: toWire(err), Pid: s.pid}
	if err := json.NewEncoder(f).Encode(resp); err != nil {
		s.log.Error("report ready", "err", err)
	}
}

// teardown undoes a failed create.
func (s *shim) teardown() {
	if s.ln != nil {
		s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.rt.Delete(ctx, s.cfg.id, true); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		s.log.Debug("delete after failed create", "err", err)
	}
}
