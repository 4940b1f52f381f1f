package task

import (
	"context"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"berth/errdefs"
)

// consoleSocket is the listening end of a runtime's --console-socket: the
// runtime connects once and sends the pty master as SCM_RIGHTS.
type consoleSocket struct {
	path string
	ln   *net.UnixListener
}

func newConsoleSocket(path string) (*consoleSocket, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, fmt.Errorf("console socket %s: path too long for a unix socket: %w", path, errdefs.ErrInvalidArgument)
	}
	_ = os.Remove(path)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return &consoleSocket{path: path, ln: ln}, nil
}

// receive waits for the runtime's connection and returns the pty master.
func (c *consoleSocket) receive(ctx context.Context) (*os.File, error) {
	stop := context.AfterFunc(ctx, func() { c.ln.Close() })
	defer stop()
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket %s: accept: %w", c.path, err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: receive: %w", c.path, err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("console socket %s: no control message: %w", c.path, errdefs.ErrInvalidArgument)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("console socket %s: no pty fd: %w", c.path, errdefs.ErrInvalidArgument)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (c *consoleSocket) close() {
	c.ln.Close()
	os.Remove(c.path)
}

// resizePty sets a pty's window size; the kernel sends SIGWINCH to its
// foreground process group.
func resizePty(f *os.File, width, height uint16) error {
	ws := &unix.Winsize{Col: width, Row: height}
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("resize pty: %w", err)
	}
	return nil
}
