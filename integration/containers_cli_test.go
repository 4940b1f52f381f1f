package integration

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestContainerCLIParity runs the same container commands through the
// stock docker CLI and berth against one real daemon: what they print and
// how they exit must match (with "docker" read as "berth").
func TestContainerCLIParity(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--exec-root", shortExecRoot(t))
	dockerCLI(t)
	d.importBusybox("busybox:latest")
	d.must("run", "-d", "--name", "web", "-p", "127.0.0.1:"+strconv.Itoa(freePort(t, "tcp"))+":80", "busybox", "sh", "-c", "echo started; echo oops >&2; exec sleep 1000")
	cases := []struct {
		args  []string
		stdin string
	}{
		{args: []string{"run", "--rm", "busybox", "echo", "hi"}},
		{args: []string{"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3"}},
		{args: []string{"run", "--rm", "-t", "busybox", "echo", "tty"}},
		{args: []string{"run", "--rm", "-i", "busybox", "cat"}, stdin: "piped\n"},
		{args: []string{"run", "--rm", "busybox", "/no/such/binary"}},
		{args: []string{"run", "--rm", "busybox", "nosuchcommand"}},
		{args: []string{"run", "--rm", "busybox", "/etc/passwd"}},
		{args: []string{"run", "--rm", "--name", "web", "busybox", "true"}},
		{args: []string{"ps", "--format", "{{.Names}} {{.Image}} {{.Command}} {{.Ports}} {{.State}}"}},
		{args: []string{"logs", "web"}},
		{args: []string{"logs", "--tail", "1", "web"}},
		{args: []string{"exec", "web", "sh", "-c", "echo e; echo f >&2; exit 4"}},
		{args: []string{"exec", "-i", "web", "cat"}, stdin: "through exec\n"},
		{args: []string{"exec", "web", "nosuchcommand"}},
		{args: []string{"inspect", "-f", "{{.Name}} {{.State.Status}} {{.Config.Cmd}}", "web"}},
		{args: []string{"inspect", "-f", "{{range $p, $b := .NetworkSettings.Ports}}{{$p}}={{(index $b 0).HostPort}} {{end}}", "web"}},
		{args: []string{"port", "web"}},
		{args: []string{"diff", "web"}},
		{args: []string{"kill", "-s", "NOPE", "web"}},
		{args: []string{"pause", "nosuch"}},
		{args: []string{"rm", "web"}},
		{args: []string{"cp", "web:/etc/passwd", "-"}},
	}
	for _, tc := range cases {
		b := d.berthIn(strings.NewReader(tc.stdin), tc.args...)
		k := d.dockerIn(strings.NewReader(tc.stdin), tc.args...)
		if normalize(k.Stdout) != normalize(b.Stdout) || normalize(k.Stderr) != normalize(b.Stderr) || k.Code != b.Code {
			t.Errorf("%q differs\ndocker: %s\nberth: %s", tc.args, k, b)
		}
	}
	// Each CLI's own full run: a created, started, stopped and removed
	// container, seen the same way by both.
	for _, cli := range []func(...string) result{d.berth, d.docker} {
		id := strings.TrimSpace(runOK(t, cli, "create", "--name", "life", "busybox", "sleep", "1000"))
		runOK(t, cli, "start", "life")
		if st := runOK(t, cli, "inspect", "-f", "{{.State.Status}}", id); st != "running\n" {
			t.Fatalf("after start: %q", st)
		}
		runOK(t, cli, "stop", "-t", "1", "life")
		if st := runOK(t, cli, "ps", "-a", "--filter", "name=life", "--format", "{{.Status}}"); !strings.HasPrefix(st, "Exited (137) ") {
			t.Errorf("after stop: %q", st)
		}
		if out := runOK(t, cli, "rm", "life"); out != "life\n" {
			t.Errorf("rm printed %q", out)
		}
	}
}

var (
	containerID = regexp.MustCompile(`\b[0-9a-f]{64}\b`)
	// docker logs some client-side errors through logrus.
	logrusLine = regexp.MustCompile(`(?m)^time="[^"]*" level=error msg="(.*)"$`)
)

// normalize makes two CLIs' outputs comparable: docker reads as berth,
// container ids (each CLI made its own containers) as <id>, and docker's
// logrus error lines as the plain line berth prints.
func normalize(s string) string {
	s = logrusLine.ReplaceAllStringFunc(s, func(l string) string {
		msg := logrusLine.FindStringSubmatch(l)[1]
		if u, err := strconv.Unquote(`"` + msg + `"`); err == nil {
			msg = u
		}
		return msg
	})
	s = containerID.ReplaceAllString(s, "<id>")
	return strings.ReplaceAll(s, "docker", "berth")
}

// shortExecRoot is an exec root with a short path: the shim's console
// socket lives below it, and unix socket paths are limited to 108 bytes.
func shortExecRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "bx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // registered first, so it runs after the daemon stopped
		unmountUnder(dir)
		os.RemoveAll(dir)
	})
	return dir
}

func runOK(t *testing.T, cli func(...string) result, args ...string) string {
	t.Helper()
	r := cli(args...)
	if r.Code != 0 {
		t.Fatalf("%q: %s", args, r)
	}
	return r.Stdout
}

// ptyPair opens a pseudo-terminal.
func ptyPair(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := unix.IoctlSetWinsize(int(s.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 111}); err != nil {
		t.Fatal(err)
	}
	return m, s
}

// expect reads the terminal until want shows up.
func expect(t *testing.T, r io.Reader, want string) {
	t.Helper()
	var mu sync.Mutex
	var seen bytes.Buffer
	found := make(chan bool, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			n, err := r.Read(buf)
			mu.Lock()
			seen.Write(buf[:n])
			ok := strings.Contains(seen.String(), want)
			mu.Unlock()
			if ok || err != nil {
				found <- ok
				return
			}
		}
	}()
	select {
	case ok := <-found:
		if !ok {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("terminal shows %q, want %q", seen.String(), want)
		}
	case <-time.After(30 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("timed out waiting for %q on the terminal, which shows %q", want, seen.String())
	}
}

// cliOnTTY starts the berth CLI with a terminal as its stdio.
func cliOnTTY(t *testing.T, d *daemon, tty *os.File, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(berthBin, append([]string{"-H", d.Host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.dir, "cfg"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = tty, tty, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(30 * time.Second):
		t.Fatal("the CLI did not exit")
		return -1
	}
}

// TestInteractiveShell drives a real shell in a container through a
// pseudo-terminal: `run -it`, keystrokes and output through the
// container's pty, the terminal size, ctrl-p ctrl-q to detach, `attach`
// to come back and `exit 7` ending both the shell and attach with 7.
func TestInteractiveShell(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "--exec-root", shortExecRoot(t))
	d.importBusybox("busybox:latest")
	master, slave := ptyPair(t)
	run := cliOnTTY(t, d, slave, "run", "-it", "--name", "shell", "busybox", "sh")
	expect(t, master, "# ")
	if _, err := master.Write([]byte("echo $((6*7)) $(stty size)\r")); err != nil {
		t.Fatal(err)
	}
	expect(t, master, "42 33 111")
	if _, err := master.Write([]byte{16, 17}); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, run); code != 0 {
		t.Fatalf("run -it after ctrl-p ctrl-q: exit %d", code)
	}
	if st := d.must("inspect", "-f", "{{.State.Status}}", "shell"); st != "running\n" {
		t.Fatalf("after detaching the shell is %q", st)
	}
	attach := cliOnTTY(t, d, slave, "attach", "shell")
	if _, err := master.Write([]byte("exit 7\r")); err != nil {
		t.Fatal(err)
	}
	if code := exitCode(t, attach); code != 7 {
		t.Fatalf("attach after `exit 7`: exit %d", code)
	}
	if st := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "shell"); st != "exited 7\n" {
		t.Errorf("after exit: %q", st)
	}
}
