package api

import (
	"context"
	"io"
	"time"

	berthcontainer "berth/container"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
)

// ContainerBackend is what the container routes need of the container
// service. Errors carry errdefs kinds; messages follow dockerd's wording.
type ContainerBackend interface {
	ContainerCreate(ctx context.Context, opts berthcontainer.CreateOptions) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, name string) error
	ContainerStop(ctx context.Context, name string, opts berthcontainer.StopOptions) error
	ContainerRestart(ctx context.Context, name string, opts berthcontainer.StopOptions) error
	ContainerKill(ctx context.Context, name, signal string) error
	ContainerPause(ctx context.Context, name string) error
	ContainerUnpause(ctx context.Context, name string) error
	// ContainerWait validates at once (unknown container -> error) and
	// then delivers one response when condition ("not-running",
	// "next-exit", "removed") is met.
	ContainerWait(ctx context.Context, name string, condition container.WaitCondition) (<-chan container.WaitResponse, error)
	ContainerRemove(ctx context.Context, name string, opts berthcontainer.RemoveOptions) error
	ContainerList(ctx context.Context, opts berthcontainer.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, name string, size bool) (container.InspectResponse, error)
	ContainerRename(ctx context.Context, name, newName string) error
	ContainerTop(ctx context.Context, name, psArgs string) (container.TopResponse, error)
	ContainerStats(ctx context.Context, name string) (container.StatsResponse, error)
	// ContainerLogs returns the log lines (a closed channel ends them) and
	// whether the container has a tty (the API then writes raw bytes
	// instead of the multiplexed stream).
	ContainerLogs(ctx context.Context, name string, opts berthcontainer.LogsOptions) (<-chan berthcontainer.LogEntry, bool, error)
	// ContainerAttach blocks until the streams end, the container exits or
	// the detach keys are read; a detach returns container.ErrDetached.
	ContainerAttach(ctx context.Context, name string, streams berthcontainer.AttachStreams) error
	ContainerResize(ctx context.Context, name string, height, width uint) error
	ContainerChanges(ctx context.Context, name string) ([]container.FilesystemChange, error)
	ContainerExport(ctx context.Context, name string, w io.Writer) error
	ContainerStatPath(ctx context.Context, name, path string) (container.PathStat, error)
	ContainerArchivePath(ctx context.Context, name, path string) (io.ReadCloser, container.PathStat, error)
	ContainerExtractToDir(ctx context.Context, name, path string, opts berthcontainer.CopyToOptions, content io.Reader) error
	ContainersPrune(ctx context.Context, filters map[string][]string) (container.PruneReport, error)

	ExecCreate(ctx context.Context, name string, req container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, opts berthcontainer.ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (container.ExecInspectResponse, error)
	ExecResize(ctx context.Context, execID string, height, width uint) error
}

// EventsBackend serves GET /events: the recorded events in [since, until]
// that match filters, then (when until is zero) live ones until ctx ends.
type EventsBackend interface {
	Events(ctx context.Context, since, until time.Time, filters map[string][]string) (past []events.Message, live <-chan events.Message, err error)
}
