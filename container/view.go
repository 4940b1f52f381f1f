package container

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"berth/mount"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/storage"
)

const zeroTime = "0001-01-01T00:00:00Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// command is the container's full command line: entrypoint then cmd.
func command(cfg *container.Config) []string {
	return append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
}

// ContainerInspect is `inspect` of a container.
func (s *Service) ContainerInspect(ctx context.Context, name string, size bool) (container.InspectResponse, error) {
	e, err := s.lookup(name)
	if err != nil {
		return container.InspectResponse{}, err
	}
	e.mu.Lock()
	rec := e.rec
	var execs []string
	e.mu.Unlock()
	s.mu.Lock()
	for id, x := range s.execs {
		if x.containerID == rec.ID && x.running {
			execs = append(execs, id)
		}
	}
	s.mu.Unlock()
	full := command(rec.Config)
	resp := container.InspectResponse{
		ID: rec.ID, Created: formatTime(rec.Created), Image: rec.Image, Name: rec.Name,
		State: wireState(&rec.State), RestartCount: rec.State.RestartCount, Driver: rec.Driver, Platform: "linux",
		ResolvConfPath: filepath.Join(s.containerDir(rec.ID), "resolv.conf"),
		HostnamePath:   filepath.Join(s.containerDir(rec.ID), "hostname"),
		HostsPath:      filepath.Join(s.containerDir(rec.ID), "hosts"),
		LogPath:        s.logPath(rec.ID), ExecIDs: execs, HostConfig: rec.HostConfig, Config: rec.Config,
		Mounts: wireMounts(rec.Mounts), NetworkSettings: s.networkSettings(&rec),
		GraphDriver: &storage.DriverData{Name: rec.Driver, Data: s.graphData(ctx, &rec)},
	}
	if len(full) > 0 {
		resp.Path, resp.Args = full[0], full[1:]
	}
	if size {
		rw, rootfs := s.sizes(ctx, &rec)
		resp.SizeRw, resp.SizeRootFs = &rw, &rootfs
	}
	return resp, nil
}

func wireState(st *State) *container.State {
	return &container.State{
		Status: container.ContainerState(st.Status), Running: st.IsRunning(), Paused: st.Status == StatusPaused,
		Restarting: st.Status == StatusRestarting, OOMKilled: st.OOMKilled, Dead: st.Status == StatusDead,
		Pid: st.Pid, ExitCode: st.ExitCode, Error: st.Error,
		StartedAt: formatTime(st.StartedAt), FinishedAt: formatTime(st.FinishedAt),
	}
}

func (s *Service) networkSettings(rec *Record) *container.NetworkSettings {
	if rec.Network != nil && rec.State.IsRunning() {
		return rec.Network
	}
	return &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{}}
}

// graphData describes the writable layer's directories as overlay2 does.
func (s *Service) graphData(ctx context.Context, rec *Record) map[string]string {
	mounts, err := s.opts.Snapshotter.Mounts(ctx, rec.Snapshot)
	if err != nil {
		return map[string]string{}
	}
	if o, ok := mount.OverlayOf(mounts); ok {
		return map[string]string{
			"LowerDir": strings.Join(o.Lower, ":"), "UpperDir": o.Upper, "WorkDir": o.Work,
			"MergedDir": s.rootfs(rec.ID),
		}
	}
	if dir, _, ok := mount.BindOf(mounts); ok {
		return map[string]string{"Dir": dir, "MergedDir": s.rootfs(rec.ID)}
	}
	return map[string]string{"MergedDir": s.rootfs(rec.ID)}
}

// sizes are the writable layer's size and the whole root filesystem's.
func (s *Service) sizes(ctx context.Context, rec *Record) (rw, rootfs int64) {
	if u, err := s.opts.Snapshotter.Usage(ctx, rec.Snapshot); err == nil {
		rw = u.Size
	}
	rootfs = rw
	if img, err := s.opts.Images.ImageInspect(ctx, rec.Image); err == nil {
		rootfs += img.Size
	}
	return rw, rootfs
}

// statusString is the STATUS column of `ps`.
func statusString(st *State, now time.Time) string {
	ago := func(t time.Time) string { return units.HumanDuration(now.Sub(t)) + " ago" }
	switch st.Status {
	case StatusCreated:
		return "Created"
	case StatusRunning:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt))
	case StatusPaused:
		return "Up " + units.HumanDuration(now.Sub(st.StartedAt)) + " (Paused)"
	case StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s", st.ExitCode, ago(st.FinishedAt))
	case StatusRemoving:
		return "Removal In Progress"
	case StatusDead:
		return "Dead"
	}
	if st.FinishedAt.IsZero() {
		return "Created"
	}
	return fmt.Sprintf("Exited (%d) %s", st.ExitCode, ago(st.FinishedAt))
}

// ContainerList is `ps`.
func (s *Service) ContainerList(ctx context.Context, opts ListOptions) ([]container.Summary, error) {
	f, err := s.newFilter(ctx, opts.Filters)
	if err != nil {
		return nil, err
	}
	limit := opts.Limit
	if opts.Latest {
		limit = 1
	}
	all := opts.All || limit > 0
	now := time.Now()
	out := []container.Summary{}
	for _, e := range s.all() {
		if limit > 0 && len(out) >= limit {
			break
		}
		e.mu.Lock()
		rec := e.rec
		e.mu.Unlock()
		if (!all && !rec.State.IsRunning() && rec.State.Status != StatusRestarting) || !f.match(&rec) {
			continue
		}
		out = append(out, s.summary(ctx, &rec, opts.Size, now))
	}
	return out, nil
}

func (s *Service) summary(ctx context.Context, rec *Record, size bool, now time.Time) container.Summary {
	sum := container.Summary{
		ID: rec.ID, Names: []string{rec.Name}, Image: rec.Config.Image, ImageID: rec.Image,
		Command: strings.Join(command(rec.Config), " "), Created: rec.Created.Unix(), Ports: []container.PortSummary{},
		Labels: nonNilLabels(rec.Config.Labels), State: container.ContainerState(rec.State.Status),
		Status: statusString(&rec.State, now), Mounts: wireMounts(rec.Mounts),
		NetworkSettings: &container.NetworkSettingsSummary{Networks: s.networkSettings(rec).Networks},
	}
	sum.HostConfig.NetworkMode = string(rec.HostConfig.NetworkMode)
	if rec.Network != nil && rec.State.IsRunning() {
		sum.Ports = portSummaries(rec.Network.Ports)
	}
	if size {
		sum.SizeRw, sum.SizeRootFs = s.sizes(ctx, rec)
	}
	return sum
}

// portSummaries flattens the port map for `ps`: one entry per binding, and
// one without a public port for an exposed port that is not published.
func portSummaries(ports network.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	for p, bindings := range ports {
		if len(bindings) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
			continue
		}
		for _, b := range bindings {
			pub, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(pub), Type: string(p.Proto())})
		}
	}
	return out
}

func nonNilLabels(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
