package task

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"berth/errdefs"
)

// The shim protocol. A client opens one connection per call on
// <state-dir>/shim.sock and writes one JSON request line; the shim answers
// with one JSON response line. For "attach" and "exec" a successful response
// turns the connection into a stream: the client's bytes are stdin (its
// half-close is stdin's EOF) and the shim's bytes are the output, raw for a
// tty, else framed as Docker's stdcopy does: an 8-byte header
// {stream (1 stdout, 2 stderr), 0, 0, 0, big-endian uint32 length} before
// each chunk. The shim closes the connection when the output ends.
//
//	op       request fields                      response
//	state    -                                   state
//	start    -                                   -
//	kill     signal, all, exec                   -
//	wait     exec                                exit (blocks until the process ends)
//	attach   stdin, stdout, stderr, closeStdin   - then the stream
//	resize   width, height, exec                 -
//	exec     exec (id), process                  pid then the stream
//	pause    -                                   -
//	resume   -                                   -
//	delete   force                               exit; the shim then exits
const (
	opState  = "state"
	opStart  = "start"
	opKill   = "kill"
	opWait   = "wait"
	opAttach = "attach"
	opResize = "resize"
	opExec   = "exec"
	opPause  = "pause"
	opResume = "resume"
	opDelete = "delete"
)

// Files in a shim's state directory.
const (
	socketFile = "shim.sock"
	exitFile   = "exit.json"
	pidFile    = "init.pid"
	shimLog    = "shim.log"
)

// goWord, written on the shim's --go-fd, lets a launched shim create the
// container; end of file instead means it is not wanted.
const goWord = "create\n"

type request struct {
	Op         string         `json:"op"`
	Signal     int            `json:"signal,omitempty"`
	All        bool           `json:"all,omitempty"`
	Force      bool           `json:"force,omitempty"`
	Exec       string         `json:"exec,omitempty"`
	Width      uint16         `json:"width,omitempty"`
	Height     uint16         `json:"height,omitempty"`
	Stdin      bool           `json:"stdin,omitempty"`
	Stdout     bool           `json:"stdout,omitempty"`
	Stderr     bool           `json:"stderr,omitempty"`
	CloseStdin bool           `json:"closeStdin,omitempty"`
	Process    *specs.Process `json:"process,omitempty"`
}

type response struct {
	Error *wireError  `json:"error,omitempty"`
	State *ShimState  `json:"state,omitempty"`
	Exit  *ExitStatus `json:"exit,omitempty"`
	Pid   int         `json:"pid,omitempty"`
}

// ShimState is the shim's view of its container.
type ShimState struct {
	ID      string      `json:"id"`
	Status  string      `json:"status"` // created, running, paused or stopped
	Pid     int         `json:"pid"`    // init pid on the host
	ShimPid int         `json:"shimPid"`
	Tty     bool        `json:"tty"`
	Exit    *ExitStatus `json:"exit,omitempty"`
}

// wireError carries an error's kind and, for runtime failures, the fields
// that classify it, so errors.Is and ExecFailureCode work on the client.
type wireError struct {
	Message string        `json:"message"`
	Kind    string        `json:"kind,omitempty"`
	Runtime *RuntimeError `json:"runtime,omitempty"`
}

var kinds = []error{
	errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument, errdefs.ErrConflict,
	errdefs.ErrFailedPrecondition, errdefs.ErrUnavailable, errdefs.ErrNotImplemented,
	errdefs.ErrPermissionDenied, errdefs.ErrUnauthenticated,
}

func toWire(err error) *wireError {
	if err == nil {
		return nil
	}
	w := &wireError{Message: err.Error()}
	for _, k := range kinds {
		if errors.Is(err, k) {
			w.Kind = k.Error()
			break
		}
	}
	var re *RuntimeError
	if errors.As(err, &re) {
		w.Runtime = re
	}
	return w
}

func kindOf(name string) error {
	for _, k := range kinds {
		if k.Error() == name {
			return k
		}
	}
	return nil
}

func fromWire(w *wireError) error {
	if w == nil {
		return nil
	}
	kind := kindOf(w.Kind)
	if w.Runtime != nil {
		re := *w.Runtime
		re.Kind = kind
		if re.Error() == w.Message {
			return &re
		}
		return fmt.Errorf("%s: %w", w.Message, &re)
	}
	if kind != nil {
		return errdefs.Errorf(kind, "%s", w.Message)
	}
	return errors.New(w.Message)
}

// Stream numbers of the stdcopy framing.
const (
	streamStdout = 1
	streamStderr = 2
)

func writeFrame(w io.Writer, stream byte, p []byte) error {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := w.Write(append(hdr[:], p...)); err != nil {
		return err
	}
	return nil
}

// demux copies a framed stream to stdout and stderr until EOF.
func demux(r io.Reader, stdout, stderr io.Writer) error {
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
		dst := stdout
		if hdr[0] == streamStderr {
			dst = stderr
		}
		if dst == nil {
			continue
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return err
		}
	}
}
