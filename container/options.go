// Package container keeps the engine's containers: their records, the state
// machine, the lifecycle over task (the shim and the OCI runtime), logs,
// exec, attach, and the filesystem operations (diff, cp, export).
package container

import (
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CreateOptions is `create`: the wire request plus the name.
type CreateOptions struct {
	Name             string
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
	Platform         *ocispec.Platform
}

// StopOptions is `stop` and `restart`: Signal overrides the container's stop
// signal; Timeout (seconds, nil = the container's own, -1 = wait forever)
// is the grace period before SIGKILL.
type StopOptions struct {
	Signal  string
	Timeout *int
}

// RemoveOptions is `rm`.
type RemoveOptions struct {
	Force         bool // kill a running container first
	RemoveVolumes bool // remove its anonymous volumes
}

// ListOptions is `ps`.
type ListOptions struct {
	All     bool
	Limit   int  // -n: the last n created (-1 = no limit)
	Latest  bool // -l
	Size    bool // -s
	Filters map[string][]string
}

// LogsOptions is `logs`.
type LogsOptions struct {
	Stdout, Stderr bool
	Follow         bool
	Since, Until   time.Time // zero = unbounded
	Tail           int       // lines from the end; -1 = all
}

// LogEntry is one line of a container's log.
type LogEntry struct {
	Stream string // "stdout" or "stderr"
	Line   []byte // with its trailing newline, if it had one
	Time   time.Time
}

// AttachStreams are the caller's ends of an attach: nil for streams not
// asked for. With a tty, Stderr is unused (the pty merges them).
type AttachStreams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// DetachKeys overrides the default ctrl-p,ctrl-q.
	DetachKeys string
	// Logs replays the log before streaming; Stream follows live output.
	Logs, Stream bool
	// Attached, when not nil, is called once the streams are connected
	// (for a created container: queued for its next start), before the
	// first write and before blocking. The API answers the attach request
	// only then, so a client that starts the container as soon as attach
	// returns (`run` does) cannot miss output.
	Attached func()
}

// ExecStartOptions is POST /exec/{id}/start.
type ExecStartOptions struct {
	Detach      bool
	Tty         bool
	ConsoleSize *[2]uint
	Streams     AttachStreams
}

// CopyToOptions is PUT /containers/{id}/archive.
type CopyToOptions struct {
	NoOverwriteDirNonDir bool
	CopyUIDGID           bool
}

// ErrDetached is returned by attach and exec when the user typed the detach
// keys: the session ends, the container keeps running.
var ErrDetached = errDetached{}

type errDetached struct{}

func (errDetached) Error() string { return "detached from container" }
