package apitest

import (
	"bytes"
	"context"
	"io"
	"strconv"
	"strings"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
)

// ContainerLogs sends the recorded lines that pass the options and, with
// Follow, new ones until the container stops.
func (s *Containers) ContainerLogs(ctx context.Context, name string, opts berthcontainer.LogsOptions) (<-chan berthcontainer.LogEntry, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return nil, false, err
	}
	keep := func(e berthcontainer.LogEntry) bool {
		if (e.Stream == "stdout" && !opts.Stdout) || (e.Stream == "stderr" && !opts.Stderr) {
			return false
		}
		return (opts.Since.IsZero() || e.Time.After(opts.Since)) && (opts.Until.IsZero() || !e.Time.After(opts.Until))
	}
	var backlog []berthcontainer.LogEntry
	for _, e := range c.logs {
		if keep(e) {
			backlog = append(backlog, e)
		}
	}
	if opts.Tail >= 0 && len(backlog) > opts.Tail {
		backlog = backlog[len(backlog)-opts.Tail:]
	}
	next, notify, follow := len(c.logs), c.logged, opts.Follow && c.running()
	out := make(chan berthcontainer.LogEntry)
	go func() {
		defer close(out)
		send := func(e berthcontainer.LogEntry) bool {
			select {
			case out <- e:
				return true
			case <-ctx.Done():
				return false
			}
		}
		for _, e := range backlog {
			if !send(e) {
				return
			}
		}
		for follow {
			select {
			case <-notify:
			case <-ctx.Done():
				return
			}
			s.mu.Lock()
			fresh := append([]berthcontainer.LogEntry(nil), c.logs[next:]...)
			next, notify, follow = len(c.logs), c.logged, c.running()
			s.mu.Unlock()
			for _, e := range fresh {
				if keep(e) && !send(e) {
					return
				}
			}
		}
	}()
	return out, c.config.Tty, nil
}

func notRunning(c *fakeContainer) error {
	return errdefs.Errorf(errdefs.ErrConflict, "Container %s is not running", c.id)
}

// ContainerStats reports fixed usage figures, with a CPU counter that
// grows between samples; a stopped container gets an empty sample.
func (s *Containers) ContainerStats(_ context.Context, name string) (container.StatsResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return container.StatsResponse{}, err
	}
	st := container.StatsResponse{ID: c.id, Name: c.name, OSType: "linux"}
	if !c.running() {
		return st, nil
	}
	now := s.now()
	up := uint64(now.Sub(c.startedAt).Nanoseconds())
	st.Read = now
	st.NumProcs = 0
	st.CPUStats = container.CPUStats{
		CPUUsage:    container.CPUUsage{TotalUsage: up / 4, UsageInUsermode: up / 8, UsageInKernelmode: up / 8},
		SystemUsage: up * 2, OnlineCPUs: 2,
	}
	st.MemoryStats = container.MemoryStats{Usage: 8 << 20, Limit: 4 << 30, Stats: map[string]uint64{"inactive_file": 1 << 20}}
	if c.host.Memory > 0 {
		st.MemoryStats.Limit = uint64(c.host.Memory)
	}
	st.PidsStats = container.PidsStats{Current: 1}
	st.Networks = map[string]container.NetworkStats{"eth0": {RxBytes: 1296, TxBytes: 0, RxPackets: 16}}
	st.BlkioStats = container.BlkioStats{IoServiceBytesRecursive: []container.BlkioStatEntry{
		{Major: 8, Minor: 0, Op: "read", Value: 4096}, {Major: 8, Minor: 0, Op: "write", Value: 0},
	}}
	return st, nil
}

// ContainerTop lists the program as the container's one process, in the
// columns of `ps -ef`.
func (s *Containers) ContainerTop(_ context.Context, name, psArgs string) (container.TopResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return container.TopResponse{}, err
	}
	if !c.running() {
		return container.TopResponse{}, notRunning(c)
	}
	if psArgs != "" && psArgs != "-ef" && psArgs != "aux" {
		return container.TopResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "ps: unsupported options %q", psArgs)
	}
	return container.TopResponse{
		Titles:    []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{{"root", strconv.Itoa(c.pid), "4000", "0", c.startedAt.UTC().Format("15:04"), "?", "00:00:00", strings.Join(c.argv(), " ")}},
	}, nil
}

// ContainerResize records a resize of a running tty container.
func (s *Containers) ContainerResize(_ context.Context, name string, height, width uint) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.find(name)
	if err != nil {
		return err
	}
	if !c.running() {
		return notRunning(c)
	}
	s.publish(c, eventtypes.ActionResize, map[string]string{"height": strconv.Itoa(int(height)), "width": strconv.Itoa(int(width))})
	return nil
}

// ContainerChanges lists what cp changed, sorted by path.
func (s *Containers) ContainerChanges(_ context.Context, name string) ([]container.FilesystemChange, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, err
	}
	return c.fs.diff(), nil
}

func (s *Containers) lookup(name string) (*fakeContainer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.find(name)
}

// ContainerExport writes the whole filesystem as a tar.
func (s *Containers) ContainerExport(_ context.Context, name string, w io.Writer) error {
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	c.fs.mu.Lock()
	b, err := c.fs.tar("/", "")
	c.fs.mu.Unlock()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// ContainerStatPath stats a path in the container.
func (s *Containers) ContainerStatPath(_ context.Context, name, p string) (container.PathStat, error) {
	c, err := s.lookup(name)
	if err != nil {
		return container.PathStat{}, err
	}
	return c.fs.stat(p, name)
}

// ContainerArchivePath tars a path of the container.
func (s *Containers) ContainerArchivePath(_ context.Context, name, p string) (io.ReadCloser, container.PathStat, error) {
	c, err := s.lookup(name)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	st, err := c.fs.stat(p, name)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	b, err := c.fs.archive(p, name)
	if err != nil {
		return nil, container.PathStat{}, err
	}
	return io.NopCloser(bytes.NewReader(b)), st, nil
}

// ContainerExtractToDir unpacks a tar into a directory of the container.
func (s *Containers) ContainerExtractToDir(_ context.Context, name, p string, opts berthcontainer.CopyToOptions, content io.Reader) error {
	c, err := s.lookup(name)
	if err != nil {
		return err
	}
	return c.fs.extract(p, name, content, opts.NoOverwriteDirNonDir)
}
