package task

import (
	"errors"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/errdefs"
)

func TestShimExitStatus(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cases := []struct {
		name string
		args []string
		code int
		log  []string // expected "stream:line" entries
	}{
		{"echo", []string{"echo", "hi"}, 0, []string{"stdout:hi\n"}},
		{"exit3", []string{"sh", "-c", "exit 3"}, 3, nil},
		{"stderr-partial", []string{"sh", "-c", "echo -n no-newline >&2; echo out"}, 0,
			[]string{"stdout:out\n", "stderr:no-newline"}},
	}
	for rtName, bin := range runtimesUnderTest(t) {
		for _, tc := range cases {
			t.Run(rtName+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				rt := newRuntime(t, bin)
				s, opts, err := startShim(t, rt, bundleSpec{args: tc.args}, nil)
				if err != nil {
					t.Fatal(err)
				}
				ctx := testCtx(t)
				if err := s.Start(ctx); err != nil {
					t.Fatal(err)
				}
				st, err := s.Wait(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if st.Code != tc.code || st.FinishedAt.IsZero() {
					t.Fatalf("exit = %+v, want code %d", st, tc.code)
				}
				rec, err := ReadExit(opts.StateDir)
				if err != nil || rec != st {
					t.Fatalf("recorded exit = %+v, %v; want %+v", rec, err, st)
				}
				var got []string
				for _, e := range readLog(t, opts.Log.Path) {
					got = append(got, e.Stream+":"+e.Log)
				}
				if !sameSet(got, tc.log) {
					t.Fatalf("log = %q, want %q", got, tc.log)
				}
			})
		}
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestShimExecFailure(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"missing", []string{"/no/such"}, 127},
		{"missing-in-path", []string{"nosuchcmd"}, 127},
		{"not-executable", []string{"/etc/passwd"}, 126},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := newRuntime(t, RuncPath)
			s, _, err := startShim(t, rt, bundleSpec{args: tc.args}, nil)
			if err == nil {
				// A runtime may only find out when the process starts.
				err = s.Start(testCtx(t))
			}
			if err == nil {
				t.Fatal("no error")
			}
			code, ok := ExecFailureCode(err)
			if !ok || code != tc.code {
				t.Fatalf("ExecFailureCode(%v) = %d, %v; want %d", err, code, ok, tc.code)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("%v: not ErrInvalidArgument", err)
			}
			if !strings.Contains(err.Error(), tc.args[0]) {
				t.Fatalf("%v does not name %s", err, tc.args[0])
			}
		})
	}
}

func TestShimKill(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	cases := []struct {
		name string
		sig  syscall.Signal
		// A pid-namespace init ignores signals it has no handler for, even
		// from the host (SIGKILL excepted), so SIGTERM is tested on an init
		// that shares the host's pid namespace.
		hostPidNS bool
		code      int
	}{
		{"sigkill", syscall.SIGKILL, false, 137},
		{"sigterm", syscall.SIGTERM, true, 143},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rt := newRuntime(t, RuncPath)
			s, _, err := startShim(t, rt, bundleSpec{args: []string{"sleep", "100"}, hostPidNS: tc.hostPidNS}, nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := testCtx(t)
			if err := s.Start(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Kill(ctx, tc.sig, false); err != nil {
				t.Fatal(err)
			}
			st, err := s.Wait(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Code != tc.code || st.Signal != int(tc.sig) {
				t.Fatalf("exit = %+v, want %d by signal %d", st, tc.code, tc.sig)
			}
			if err := s.Kill(ctx, tc.sig, false); !errdefs.Conflict(err) {
				t.Fatalf("kill of exited container: %v, want conflict", err)
			}
		})
	}
}

func TestShimStdin(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, opts, err := startShim(t, rt, bundleSpec{args: []string{"cat"}}, func(o *ShimOptions) { o.Stdin = true })
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	var out, errOut syncBuffer
	a, err := s.Attach(ctx, AttachOptions{Stdin: strings.NewReader("hello\nworld\n"), Stdout: &out, Stderr: &errOut, CloseStdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hello\nworld\n" || errOut.String() != "" {
		t.Fatalf("stdout %q stderr %q", out.String(), errOut.String())
	}
	st, err := s.Wait(ctx)
	if err != nil || st.Code != 0 {
		t.Fatalf("exit %+v, %v", st, err)
	}
	if n := len(readLog(t, opts.Log.Path)); n != 2 {
		t.Fatalf("log has %d entries, want 2", n)
	}
}

func TestShimTtyResize(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, _, err := startShim(t, rt, bundleSpec{args: []string{"sh"}, tty: true}, func(o *ShimOptions) { o.Stdin = true })
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	stdinR, stdinW := io.Pipe()
	defer stdinW.Close()
	var out syncBuffer
	a, err := s.Attach(ctx, AttachOptions{Stdin: stdinR, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	for _, size := range []struct{ w, h uint16 }{{80, 24}, {123, 45}} {
		if err := s.Resize(ctx, size.w, size.h); err != nil {
			t.Fatal(err)
		}
		want := strconv.Itoa(int(size.h)) + " " + strconv.Itoa(int(size.w))
		if _, err := io.WriteString(stdinW, "stty size\n"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "stty size "+want, 10*time.Second, func() bool { return strings.Contains(out.String(), want+"\r\n") })
	}
	if _, err := io.WriteString(stdinW, "exit 4\n"); err != nil {
		t.Fatal(err)
	}
	st, err := s.Wait(ctx)
	if err != nil || st.Code != 4 {
		t.Fatalf("exit %+v, %v", st, err)
	}
	if err := a.Wait(); err != nil {
		t.Fatal(err)
	}
}

func TestShimExec(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, _, err := startShim(t, rt, bundleSpec{args: []string{"sleep", "100"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	proc := execProcess
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name           string
		process        *specs.Process
		stdin          string
		stdout, stderr string
		code           int
	}{
		{"status-and-streams", proc("sh", "-c", "echo out; echo err >&2; exit 5"), "", "out\n", "err\n", 5},
		{"stdin", proc("cat"), "piped\n", "piped\n", "", 0},
		{"tty", &specs.Process{Terminal: true, Args: []string{"sh", "-c", "tty >/dev/null && echo on-tty"},
			Cwd: "/", Env: []string{"PATH=/bin"}}, "", "on-tty\r\n", "", 0},
	}
	for _, tc := range cases {
		var out, errOut syncBuffer
		opts := ExecOptions{ID: tc.name, Process: tc.process, Stdout: &out, Stderr: &errOut}
		if tc.stdin != "" {
			opts.Stdin = strings.NewReader(tc.stdin)
		}
		e, err := s.Exec(ctx, opts)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if err := e.Streams.Wait(); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		st, err := e.Wait(ctx)
		if err != nil || st.Code != tc.code {
			t.Fatalf("%s: exit %+v, %v; want %d", tc.name, st, err, tc.code)
		}
		if out.String() != tc.stdout || errOut.String() != tc.stderr {
			t.Fatalf("%s: stdout %q stderr %q", tc.name, out.String(), errOut.String())
		}
	}
}

func execProcess(args ...string) *specs.Process {
	return &specs.Process{Args: args, Cwd: "/", Env: []string{"PATH=/bin"}}
}

// TestShimExecControl covers signalling execs and the exec errors.
func TestShimExecControl(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	rt := newRuntime(t, RuncPath)
	s, _, err := startShim(t, rt, bundleSpec{args: []string{"sleep", "100"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	proc := execProcess
	if _, err := s.Exec(ctx, ExecOptions{ID: "early", Process: proc("true")}); !errdefs.Conflict(err) {
		t.Fatalf("exec before start: %v, want conflict", err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	e, err := s.Exec(ctx, ExecOptions{ID: "killed", Process: proc("sleep", "100")})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Kill(ctx, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if st, err := e.Wait(ctx); err != nil || st.Code != 143 {
		t.Fatalf("killed exec: %+v, %v; want 143", st, err)
	}
	ttyProc := proc("sh")
	ttyProc.Terminal = true
	stdinR, stdinW := io.Pipe()
	var out syncBuffer
	te, err := s.Exec(ctx, ExecOptions{ID: "tty", Process: ttyProc, Stdin: stdinR, Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if err := te.Resize(ctx, 91, 19); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdinW, "stty size; exit 2\n"); err != nil {
		t.Fatal(err)
	}
	if st, err := te.Wait(ctx); err != nil || st.Code != 2 {
		t.Fatalf("tty exec: %+v, %v", st, err)
	}
	stdinW.Close()
	if err := te.Streams.Wait(); err != nil || !strings.Contains(out.String(), "19 91\r\n") {
		t.Fatalf("tty exec output %q, %v", out.String(), err)
	}
	if err := s.Resize(ctx, 80, 24); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("resize of a container without tty: %v", err)
	}
	_, err = s.Exec(ctx, ExecOptions{ID: "missing", Process: proc("/no/such")})
	if code, ok := ExecFailureCode(err); !ok || code != 127 {
		t.Fatalf("exec of missing binary: %v", err)
	}
	if _, err := s.Exec(ctx, ExecOptions{ID: "killed", Process: proc("true")}); !errdefs.AlreadyExists(err) {
		t.Fatalf("duplicate exec id: %v", err)
	}
}

func TestShimArgs(t *testing.T) {
	t.Parallel()
	opts := ShimOptions{Binary: "/usr/bin/berth", ID: "c1", Bundle: "/b", StateDir: "/s",
		Runtime: NewRuntime(CrunPath, "/r"), Tty: true, Stdin: true,
		Log: LogConfig{Path: "/l", MaxSize: 10, MaxFiles: 2}}
	cfg, err := parseShimArgs(opts.args()[1:])
	if err != nil {
		t.Fatal(err)
	}
	want := shimConfig{id: "c1", bundle: "/b", stateDir: "/s", runtime: CrunPath, runtimeRoot: "/r",
		tty: true, stdin: true, log: LogConfig{Path: "/l", MaxSize: 10, MaxFiles: 2}, readyFD: 3}
	if cfg != want {
		t.Fatalf("parsed %+v, want %+v", cfg, want)
	}
	if _, err := parseShimArgs([]string{"--id", "x"}); !errdefs.InvalidArgument(err) {
		t.Fatalf("missing arguments: %v", err)
	}
}
