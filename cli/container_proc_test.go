package cli

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"berth/api/apitest"
	berthcontainer "berth/container"

	"github.com/moby/moby/api/types/container"
)

// TestCLIProcess is not a test: it is the berth CLI, run as a child
// process by the tests below so they can send it signals.
func TestCLIProcess(t *testing.T) {
	if os.Getenv("BERTH_CLI_PROCESS") != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	os.Exit(Main(args, os.Stdin, os.Stdout, os.Stderr))
}

// cliProcess starts the CLI as a child process.
func cliProcess(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestCLIProcess$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "BERTH_CLI_PROCESS=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var errOut strings.Builder
	cmd.Stderr = &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, bufio.NewReader(out), &errOut
}

// waitFor polls until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func running(ctrs *apitest.Containers, name string) func() bool {
	return func() bool {
		ins, err := ctrs.ContainerInspect(context.Background(), name, false)
		return err == nil && ins.State.Running
	}
}

// TestRunProxiesSignals sends SIGINT to `run`: the container gets it (the
// program dies of it, 130) and run exits with that status, as docker run
// does; with --sig-proxy=false the CLI dies itself and the container runs on.
func TestRunProxiesSignals(t *testing.T) {
	t.Parallel()
	host, ctrs := startContainerDaemon(t, false)
	cmd, _, errOut := cliProcess(t, "-H", host, "run", "--name", "sleeper", "busybox", "sleep", "100")
	waitFor(t, "the container to run", running(ctrs, "sleeper"))
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 130 {
		t.Fatalf("run after SIGINT: %v, stderr %q; want exit 130", err, errOut.String())
	}

	cmd, _, _ = cliProcess(t, "-H", host, "run", "--sig-proxy=false", "--name", "stubborn", "busybox", "sleep", "100")
	waitFor(t, "the container to run", running(ctrs, "stubborn"))
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if st, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || st.Signal() != syscall.SIGINT {
		t.Errorf("run --sig-proxy=false after SIGINT: %v", cmd.ProcessState)
	}
	if !running(ctrs, "stubborn")() {
		t.Error("the container stopped although signals were not proxied")
	}
	_ = ctrs.ContainerKill(context.Background(), "stubborn", "KILL")
}

// TestAttachFollowsToExit attaches to a running container and exits with
// its status when it is killed.
func TestAttachFollowsToExit(t *testing.T) {
	t.Parallel()
	host, ctrs := startContainerDaemon(t, true)
	cmd, _, errOut := cliProcess(t, "-H", host, "attach", "--no-stdin", "web")
	waitFor(t, "attach", func() bool {
		until := time.Now().Format(time.RFC3339Nano)
		out, _, _ := run(t, host, nil, "events", "--since", "1h", "--until", until, "-f", "event=attach", "--format", "{{.Actor.Attributes.name}}")
		return strings.Contains(out, "web")
	})
	if err := ctrs.ContainerKill(context.Background(), "web", "KILL"); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 137 {
		t.Fatalf("attach after the container was killed: %v, stderr %q; want exit 137", err, errOut.String())
	}
	if out, errOut, code := run(t, host, nil, "attach", "exited"); code != 1 || errOut != "You cannot attach to a stopped container, start it first\n" {
		t.Errorf("attach to a stopped container: %d %q %q", code, out, errOut)
	}
}

// TestEventsStreams follows live events until the CLI is stopped.
func TestEventsStreams(t *testing.T) {
	t.Parallel()
	host, ctrs := startContainerDaemon(t, false)
	// --since makes the test independent of when the stream connects: an
	// event from before that is replayed, later ones arrive live.
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	cmd, out, _ := cliProcess(t, "-H", host, "events", "--since", since, "--filter", "event=create", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	for _, name := range []string{"first", "second"} {
		cfg := &container.Config{Image: "busybox", Cmd: []string{"true"}}
		if _, err := ctrs.ContainerCreate(context.Background(), berthcontainer.CreateOptions{Name: name, Config: cfg}); err != nil {
			t.Fatal(err)
		}
		line := make(chan string, 1)
		go func() {
			l, _ := out.ReadString('\n')
			line <- l
		}()
		select {
		case l := <-line:
			if l != "create "+name+"\n" {
				t.Errorf("event line %q, want create %s", l, name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no event for %s", name)
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}

// TestLogsFollow follows a running container's log until it exits.
func TestLogsFollow(t *testing.T) {
	t.Parallel()
	host, ctrs := startContainerDaemon(t, false)
	cfg := &container.Config{Image: "busybox", Cmd: []string{"cat"}, OpenStdin: true, StdinOnce: true}
	if _, err := ctrs.ContainerCreate(context.Background(), berthcontainer.CreateOptions{Name: "echoer", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	in, w := io.Pipe()
	attached := make(chan int, 1)
	go func() {
		attached <- Main([]string{"-H", host, "start", "-a", "-i", "echoer"}, in, io.Discard, io.Discard)
	}()
	waitFor(t, "the container to run", running(ctrs, "echoer"))
	cmd, out, _ := cliProcess(t, "-H", host, "logs", "-f", "echoer")
	for _, line := range []string{"one\n", "two\n"} {
		if _, err := w.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
		got := make(chan string, 1)
		go func() {
			l, _ := out.ReadString('\n')
			got <- l
		}()
		select {
		case l := <-got:
			if l != line {
				t.Fatalf("followed %q, want %q", l, line)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("logs -f did not show %q", line)
		}
	}
	w.Close() // the end of stdin ends cat, and with it the followed log
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f after the exit: %v", err)
	}
	if code := <-attached; code != 0 {
		t.Errorf("start -a -i: exit %d", code)
	}
}

// TestStatsStreams redraws the stats table until stopped.
func TestStatsStreams(t *testing.T) {
	t.Parallel()
	host, _ := startContainerDaemon(t, true)
	cmd, out, _ := cliProcess(t, "-H", host, "stats", "--format", "{{.Name}} {{.PIDs}}")
	for i := 0; i < 2; i++ {
		got := make(chan string, 1)
		go func() {
			l, _ := out.ReadString('\n')
			got <- l
		}()
		select {
		case l := <-got:
			if l != "web 1\n" {
				t.Fatalf("stats line %q", l)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no stats")
		}
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
}
