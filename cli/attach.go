package cli

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"berth/detachkeys"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// errDetached is the user typing the detach keys: the session ends, the
// container keeps running, and the command succeeds.
var errDetached = detachkeys.ErrDetached

// session is one hijacked attach or exec stream and the local ends it
// connects.
type session struct {
	conn       client.HijackedResponse
	stdin      io.Reader // nil when stdin is not attached
	stdout     io.Writer
	stderr     io.Writer
	tty        bool
	detachKeys string
}

// run copies until the output ends, or the input ends on a session with
// no output, or the user detaches. Output is raw for a tty and
// demultiplexed otherwise. The local terminal is raw while it runs.
func (s *session) run(ctx context.Context, e *env) error {
	if s.tty && s.stdin != nil {
		restore, err := e.rawTerminal()
		if err != nil {
			return err
		}
		defer restore()
	}
	outputDone := make(chan error, 1)
	go func() {
		var err error
		if s.tty {
			_, err = io.Copy(s.stdout, s.conn.Reader)
		} else {
			err = demux(s.stdout, s.stderr, s.conn.Reader)
		}
		outputDone <- err
	}()
	inputDone := make(chan error, 1)
	go func() {
		var err error
		if s.stdin != nil {
			in := s.stdin
			if s.tty {
				keys, kerr := detachkeys.Parse(s.detachKeys)
				if kerr != nil {
					inputDone <- kerr
					return
				}
				in = detachkeys.NewReader(in, keys)
			}
			_, err = io.Copy(s.conn.Conn, in)
		}
		if !errors.Is(err, errDetached) {
			// The daemon reads the half-close as the end of stdin.
			if cerr := s.conn.CloseWrite(); cerr != nil {
				e.log.Debug("close write", "err", cerr)
			}
		}
		inputDone <- err
	}()
	select {
	case err := <-outputDone:
		return err
	case err := <-inputDone:
		if errors.Is(err, errDetached) {
			return errDetached
		}
		if s.stdout == nil && s.stderr == nil {
			return nil
		}
		select {
		case err := <-outputDone:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// demux splits the daemon's multiplexed stream: 8-byte headers {stream,
// 0, 0, 0, big-endian length} each followed by that many bytes for stdout
// (1), stderr (2) or a daemon error (3) that ends the stream.
func demux(stdout, stderr io.Writer, r io.Reader) error {
	var hdr [8]byte
	buf := make([]byte, 32<<10)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		if n > len(buf) {
			buf = make([]byte, n)
		}
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return err
		}
		var w io.Writer
		switch hdr[0] {
		case 0, 1:
			w = stdout
		case 2:
			w = stderr
		case 3:
			return fmt.Errorf("error from daemon in stream: %s", buf[:n])
		default:
			return fmt.Errorf("Unrecognized input header: %d", hdr[0])
		}
		if w == nil {
			continue
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
	}
}

type attachOptions struct {
	noStdin, sigProxy bool
	detachKeys        string
}

func newAttachCommand(e *env) *cobra.Command {
	var o attachOptions
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAttach(cmd.Context(), e, args[0], o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	f.BoolVar(&o.noStdin, "no-stdin", false, "Do not attach STDIN")
	f.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	return cmd
}

// runAttach attaches to a running container and exits with its status
// when it stops, as docker attach does.
func runAttach(ctx context.Context, e *env, name string, o attachOptions) error {
	c, err := e.api()
	if err != nil {
		return err
	}
	ins, err := c.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	st := ins.Container.State
	switch {
	case !st.Running:
		return errors.New("You cannot attach to a stopped container, start it first")
	case st.Paused:
		return errors.New("You cannot attach to a paused container, unpause it first")
	case st.Restarting:
		return errors.New("You cannot attach to a restarting container, wait until it is running")
	}
	cfg := ins.Container.Config
	stdin := cfg.OpenStdin && !o.noStdin
	if _, isTerm := terminalFd(e.stdin); cfg.Tty && stdin && !isTerm {
		return errors.New("the input device is not a TTY")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	status := e.waitExit(ctx, ins.Container.ID, false)
	att, err := c.ContainerAttach(ctx, name, client.ContainerAttachOptions{Stream: true, Stdin: stdin, Stdout: true, Stderr: true, DetachKeys: o.detachKeys})
	if err != nil {
		return err
	}
	defer att.Close()
	if cfg.Tty {
		e.monitorSize(ctx, func(ctx context.Context, h, w uint) error {
			_, err := c.ContainerResize(ctx, name, client.ContainerResizeOptions{Height: h, Width: w})
			return err
		})
	} else if o.sigProxy {
		e.proxySignals(ctx, func(ctx context.Context, sig string) error {
			_, err := c.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: sig})
			return err
		})
	}
	s := &session{conn: att.HijackedResponse, stdout: e.stdout, stderr: e.stderr, tty: cfg.Tty, detachKeys: o.detachKeys}
	if stdin {
		s.stdin = e.stdinReader()
	}
	if err := s.run(ctx, e); err != nil {
		if errors.Is(err, errDetached) {
			return nil
		}
		return err
	}
	return exitStatus(<-status)
}
