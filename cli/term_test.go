package cli

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// readUntil reads from r until want has been seen or the time is up.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		var buf bytes.Buffer
		b := make([]byte, 256)
		for !strings.Contains(buf.String(), want) {
			n, err := r.Read(b)
			buf.Write(b[:n])
			if err != nil {
				break
			}
		}
		got <- buf.String()
	}()
	select {
	case s := <-got:
		return s
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %q", want)
		return ""
	}
}

// TestRunInteractiveTTY drives `run -it` from a real pseudo-terminal: the
// terminal goes raw, keystrokes reach the container, its size is sent,
// ctrl-p ctrl-q detaches leaving the container running, and the terminal
// is restored.
func TestRunInteractiveTTY(t *testing.T) {
	t.Parallel()
	master, slave := openPTY(t)
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	host, ctrs := startContainerDaemon(t, false)
	done := make(chan int, 1)
	var errOut bytes.Buffer
	go func() {
		done <- Main([]string{"-H", host, "run", "-it", "--name", "shell", "busybox", "cat"}, slave, slave, &errOut)
	}()
	waitRaw(t, slave)
	// Raw mode means no local echo: what comes back is the container's
	// pty output, with its "\r\n" line endings.
	if _, err := master.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	if out := readUntil(t, master, "hello\r\n"); out != "hello\r\n" {
		t.Fatalf("terminal shows %q", out)
	}
	if _, err := master.Write([]byte{16, 17}); err != nil { // ctrl-p ctrl-q
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("run -it after detaching: exit %d, stderr %q", code, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run -it did not return after the detach keys")
	}
	after, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if after.Lflag != before.Lflag || after.Oflag != before.Oflag {
		t.Errorf("terminal not restored: lflag %#x -> %#x", before.Lflag, after.Lflag)
	}
	ins, err := ctrs.ContainerInspect(context.Background(), "shell", false)
	if err != nil || !ins.State.Running {
		t.Fatalf("container after detach: %+v, %v", ins.State, err)
	}
	if !sawResize(t, host, "40", "160") {
		t.Error("the terminal's size (40x160) was not sent")
	}
	_ = ctrs.ContainerKill(context.Background(), "shell", "KILL")
}

// waitRaw waits until the CLI has put the terminal in raw mode: keys typed
// before that would be cooked (ctrl-q is flow control there).
func waitRaw(t *testing.T, tty *os.File) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		st, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
		if err != nil {
			t.Fatal(err)
		}
		if st.Lflag&(unix.ICANON|unix.ECHO) == 0 {
			return
		}
	}
	t.Fatal("the terminal never went raw")
}

// sawResize looks for the daemon's resize event with the given size.
func sawResize(t *testing.T, host, h, w string) bool {
	t.Helper()
	until := time.Now().Format(time.RFC3339Nano)
	out, _, _ := run(t, host, nil, "events", "--since", "1m", "--until", until, "-f", "event=resize", "--format", "{{.Actor.Attributes.height}}x{{.Actor.Attributes.width}}")
	return strings.Contains(out, h+"x"+w)
}

// TestExecTTYFromTerminal runs `exec -it` from a pseudo-terminal and ends
// it with the detach keys too.
func TestExecTTYFromTerminal(t *testing.T) {
	t.Parallel()
	master, slave := openPTY(t)
	host, _ := startContainerDaemon(t, true)
	done := make(chan int, 1)
	go func() {
		done <- Main([]string{"-H", host, "exec", "-it", "web", "cat"}, slave, slave, io.Discard)
	}()
	waitRaw(t, slave)
	if _, err := master.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	readUntil(t, master, "typed\r\n")
	if _, err := master.Write([]byte{16, 17}); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exec -it after detaching: exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exec -it did not return after the detach keys")
	}
	if !term.IsTerminal(int(slave.Fd())) {
		t.Fatal("slave is not a terminal")
	}
}
