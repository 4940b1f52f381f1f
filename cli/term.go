package cli

import (
	"context"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/term"
)

// terminalFd returns the descriptor of r when it is a terminal.
func terminalFd(r any) (int, bool) {
	f, ok := r.(*os.File)
	if !ok {
		return 0, false
	}
	fd := int(f.Fd())
	return fd, term.IsTerminal(fd)
}

// rawTerminal puts the local terminal on stdin in raw mode, so keys reach
// the container's pty unprocessed, and returns how to restore it. A
// stdin that is not a terminal is left alone.
func (e *env) rawTerminal() (restore func(), err error) {
	fd, ok := terminalFd(e.stdin)
	if !ok {
		return func() {}, nil
	}
	state, err := term.MakeRaw(fd)
	if err != nil {
		return nil, err
	}
	return func() { _ = term.Restore(fd, state) }, nil
}

// terminalSize reports the size of the terminal on stdout (else stdin).
func (e *env) terminalSize() (height, width uint, ok bool) {
	for _, s := range []any{e.stdout, e.stdin} {
		if fd, isTerm := terminalFd(s); isTerm {
			w, h, err := term.GetSize(fd)
			if err == nil && w > 0 && h > 0 {
				return uint(h), uint(w), true
			}
		}
	}
	return 0, 0, false
}

// monitorSize sends the terminal's size now and at every SIGWINCH until
// ctx ends. resize fails harmlessly while the process is starting.
func (e *env) monitorSize(ctx context.Context, resize func(ctx context.Context, h, w uint) error) {
	send := func() {
		if h, w, ok := e.terminalSize(); ok {
			if err := resize(ctx, h, w); err != nil {
				e.log.Debug("resize", "err", err)
			}
		}
	}
	send()
	winch := make(chan os.Signal, 1)
	signal.Notify(winch, syscall.SIGWINCH)
	go func() {
		defer signal.Stop(winch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-winch:
				send()
			}
		}
	}()
}

// proxiedSignals are forwarded to an attached container: the ones a user
// sends to a foreground process to stop or poke it.
var proxiedSignals = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2}

// proxySignals forwards signals this process receives to the container
// until ctx ends, instead of dying of them, as `docker run` does.
func (e *env) proxySignals(ctx context.Context, kill func(ctx context.Context, sig string) error) {
	ch := make(chan os.Signal, 8)
	signal.Notify(ch, proxiedSignals...)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-ch:
				sig, ok := s.(syscall.Signal)
				if !ok {
					continue
				}
				if err := kill(ctx, strconv.Itoa(int(sig))); err != nil {
					e.log.Debug("forward signal", "signal", sig, "err", err)
				}
			}
		}
	}()
}

// stdinReader is e.stdin, or nothing to read when there is none.
func (e *env) stdinReader() io.Reader {
	if e.stdin == nil {
		return eofReader{}
	}
	return e.stdin
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
