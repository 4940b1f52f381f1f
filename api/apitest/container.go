package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	berthcontainer "berth/container"
	"berth/errdefs"
	"berth/events"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	eventtypes "github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
)

// Containers is an in-memory ContainerBackend. Its containers run small
// built-in programs (see program) instead of processes, with dockerd's
// state machine, messages, events, logs, attach and exec semantics, so
// that clients can be tested end to end without a kernel. Events go to a
// real events.Bus, which also serves as the EventsBackend.
type Containers struct {
	mu     sync.Mutex
	now    func() time.Time
	images *Images
	bus    *events.Bus
	list   []*fakeContainer // in creation order
	execs  map[string]*fakeExec
	seq    int
	pids   int
}

// fakeContainer is one container. Its fields are guarded by Containers.mu.
type fakeContainer struct {
	id, name string
	created  time.Time
	config   container.Config
	host     container.HostConfig
	imageID  string

	status       container.ContainerState
	pid          int
	exitCode     int
	errMsg       string
	startedAt    time.Time
	finishedAt   time.Time
	restartCount int
	autoRemoving bool

	run     *fakeRun         // the current or last run
	exited  chan struct{}    // closed at the next exit
	removed chan struct{}    // closed when removed
	pending []*pendingAttach // attachers waiting for a start
	logs    []berthcontainer.LogEntry
	logged  chan struct{} // closed and replaced at every log line
	fs      *fakeFS
	execIDs []string
}

// NewContainers returns an empty store whose images come from imgs and
// whose events go to bus.
func NewContainers(now func() time.Time, imgs *Images, bus *events.Bus) *Containers {
	return &Containers{now: now, images: imgs, bus: bus, execs: map[string]*fakeExec{}}
}

func fakeID(kind string, n int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s-%d", kind, n)))
	return hex.EncodeToString(sum[:])
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func noSuchContainer(name string) error {
	return errdefs.Errorf(errdefs.ErrNotFound, "No such container: %s", name)
}

// find resolves a full id, a name or a unique id prefix; c.mu is held.
func (s *Containers) find(ref string) (*fakeContainer, error) {
	if ref == "" {
		return nil, noSuchContainer(ref)
	}
	for _, c := range s.list {
		if c.id == ref || c.name == "/"+strings.TrimPrefix(ref, "/") {
			return c, nil
		}
	}
	var found []*fakeContainer
	for _, c := range s.list {
		if strings.HasPrefix(c.id, ref) {
			found = append(found, c)
		}
	}
	switch len(found) {
	case 0:
		return nil, noSuchContainer(ref)
	case 1:
		return found[0], nil
	}
	return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "multiple IDs found with provided prefix: %s", ref)
}

// publish sends a container event with dockerd's attributes; s.mu is held.
func (s *Containers) publish(c *fakeContainer, action eventtypes.Action, extra map[string]string) {
	if s.bus == nil {
		return
	}
	attrs := map[string]string{"name": strings.TrimPrefix(c.name, "/"), "image": c.config.Image}
	for k, v := range c.config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	s.bus.Publish(eventtypes.ContainerEventType, action, c.id, attrs)
}

// ContainerCreate checks the name and image and records a created
// container.
func (s *Containers) ContainerCreate(_ context.Context, opts berthcontainer.CreateOptions) (container.CreateResponse, error) {
	if opts.Config == nil {
		return container.CreateResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "Config cannot be empty in order to create a container")
	}
	if opts.Name != "" && !validName.MatchString(opts.Name) {
		return container.CreateResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", opts.Name)
	}
	cfg := *opts.Config
	var host container.HostConfig
	if opts.HostConfig != nil {
		host = *opts.HostConfig
	}
	if host.AutoRemove && host.RestartPolicy.Name != "" && host.RestartPolicy.Name != container.RestartPolicyDisabled {
		return container.CreateResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "can't create 'AutoRemove' container with restart policy")
	}
	s.images.mu.Lock()
	img, _, err := s.images.find(cfg.Image)
	var imageID string
	if err == nil {
		imageID = img.Summary.ID
		if len(cfg.Cmd) == 0 && len(cfg.Entrypoint) == 0 && img.Inspect.Config != nil {
			cfg.Cmd = slices.Clone(img.Inspect.Config.Cmd)
			cfg.Entrypoint = slices.Clone(img.Inspect.Config.Entrypoint)
		}
	}
	s.images.mu.Unlock()
	if err != nil {
		return container.CreateResponse{}, err
	}
	if len(cfg.Cmd) == 0 && len(cfg.Entrypoint) == 0 {
		return container.CreateResponse{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "no command specified")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	name := "/" + strings.TrimPrefix(opts.Name, "/")
	if opts.Name == "" {
		name = fmt.Sprintf("/berth_%d", s.seq)
	}
	for _, other := range s.list {
		if other.name == name {
			return container.CreateResponse{}, errdefs.Errorf(errdefs.ErrConflict, `Conflict. The container name "%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, other.id)
		}
	}
	c := &fakeContainer{
		id: fakeID("container", s.seq), name: name, created: s.now(), config: cfg, host: host, imageID: imageID,
		status: container.StateCreated, exited: make(chan struct{}), removed: make(chan struct{}), logged: make(chan struct{}),
	}
	if c.config.Hostname == "" {
		c.config.Hostname = c.id[:12]
	}
	c.fs = newFakeFS(c.created, c.config.Hostname)
	s.list = append(s.list, c)
	s.publish(c, eventtypes.ActionCreate, nil)
	return container.CreateResponse{ID: c.id, Warnings: []string{}}, nil
}

// statusText is dockerd's human status ("Up 3 seconds", "Exited (0) 2
// seconds ago"); s.mu is held.
func (s *Containers) statusText(c *fakeContainer) string {
	now := s.now()
	switch c.status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(now.Sub(c.startedAt))
	case container.StatePaused:
		return "Up " + units.HumanDuration(now.Sub(c.startedAt)) + " (Paused)"
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	if c.startedAt.IsZero() {
		return "Created"
	}
	return fmt.Sprintf("Exited (%d) %s ago", c.exitCode, units.HumanDuration(now.Sub(c.finishedAt)))
}

func (c *fakeContainer) argv() []string {
	return append(slices.Clone([]string(c.config.Entrypoint)), c.config.Cmd...)
}

func (c *fakeContainer) running() bool {
	return c.status == container.StateRunning || c.status == container.StatePaused
}

// summary is the /containers/json entry; s.mu is held.
func (s *Containers) summary(c *fakeContainer, size bool) container.Summary {
	sum := container.Summary{
		ID: c.id, Names: []string{c.name}, Image: c.config.Image, ImageID: c.imageID,
		Command: strings.Join(c.argv(), " "), Created: c.created.Unix(), Labels: c.config.Labels,
		State: c.status, Status: s.statusText(c), Ports: []container.PortSummary{}, Mounts: []container.MountPoint{},
	}
	if sum.Labels == nil {
		sum.Labels = map[string]string{}
	}
	sum.HostConfig.NetworkMode = string(c.host.NetworkMode)
	if sum.HostConfig.NetworkMode == "" {
		sum.HostConfig.NetworkMode = "bridge"
	}
	for port, bindings := range s.ports(c) {
		if len(bindings) == 0 {
			sum.Ports = append(sum.Ports, container.PortSummary{PrivatePort: port.Num(), Type: string(port.Proto())})
		}
		for _, b := range bindings {
			ps := container.PortSummary{IP: b.HostIP, PrivatePort: port.Num(), Type: string(port.Proto())}
			fmt.Sscan(b.HostPort, &ps.PublicPort)
			sum.Ports = append(sum.Ports, ps)
		}
	}
	sum.NetworkSettings = &container.NetworkSettingsSummary{Networks: s.endpoints(c)}
	if size {
		sum.SizeRw = c.fs.changedSize()
		sum.SizeRootFs = sum.SizeRw + 2_050_000
	}
	return sum
}

// endpoints is the default bridge attachment, with an address while the
// container runs; s.mu is held.
func (s *Containers) endpoints(c *fakeContainer) map[string]*network.EndpointSettings {
	ep := &network.EndpointSettings{NetworkID: fakeID("network", 0)}
	if c.running() {
		ep.EndpointID = fakeID("endpoint", slices.Index(s.list, c))
		ep.Gateway = mustAddr("172.17.0.1")
		ep.IPAddress = mustAddr(fmt.Sprintf("172.17.0.%d", 2+slices.Index(s.list, c)))
		ep.IPPrefixLen = 16
		ep.MacAddress = network.HardwareAddr{0x02, 0x42, 0xac, 0x11, 0x00, byte(2 + slices.Index(s.list, c))}
	}
	return map[string]*network.EndpointSettings{"bridge": ep}
}

// ports is NetworkSettings.Ports of a running container: every exposed
// port, published ones bound on all IPv4 and IPv6 addresses unless an
// address was given, and a host port from 32768 up when none was; s.mu
// is held.
func (s *Containers) ports(c *fakeContainer) network.PortMap {
	if !c.running() {
		return nil
	}
	out := network.PortMap{}
	for p := range c.config.ExposedPorts {
		out[p] = nil
	}
	next := 32768
	keys := make([]network.Port, 0, len(c.host.PortBindings))
	for p := range c.host.PortBindings {
		keys = append(keys, p)
	}
	slices.SortFunc(keys, func(a, b network.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range keys {
		out[p] = nil
		for _, b := range c.host.PortBindings[p] {
			if b.HostPort == "" {
				b.HostPort = fmt.Sprint(next)
				next++
			}
			if b.HostIP.IsValid() {
				out[p] = append(out[p], b)
				continue
			}
			out[p] = append(out[p],
				network.PortBinding{HostIP: mustAddr("0.0.0.0"), HostPort: b.HostPort},
				network.PortBinding{HostIP: mustAddr("::"), HostPort: b.HostPort})
		}
	}
	return out
}
