package network

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"berth/errdefs"
	"berth/network/bridge"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// SandboxRequest is what a container asks of the network at start.
type SandboxRequest struct {
	ContainerID string
	// Name is the container's name without the leading slash.
	Name string
	// NetworkMode is HostConfig.NetworkMode: "", "default", "bridge",
	// "none", "host", or a user network's name or ID. For
	// "container:<x>" the caller resolves x and sets JoinContainerID.
	NetworkMode     string
	JoinContainerID string
	Hostname        string
	Domainname      string
	PortBindings    network.PortMap
	PublishAll      bool
	ExposedPorts    network.PortSet
	DNS             []netip.Addr
	DNSSearch       []string
	DNSOptions      []string
	ExtraHosts      []string
	// Endpoints is NetworkingConfig.EndpointsConfig, keyed by network name
	// or ID: aliases and --ip for the network of NetworkMode, and further
	// networks to join at once.
	Endpoints map[string]*network.EndpointSettings
	// Links are HostConfig.Links ("name", "name:alias", or dockerd's
	// "/name:/self/alias"): on the default bridge they become /etc/hosts
	// entries, on a user network names only this container resolves.
	Links []string
	// Dir is the container's directory: hosts, hostname and resolv.conf
	// are written there.
	Dir string
}

// Sandbox is a container's networking as the runtime spec and inspect need
// it.
type Sandbox struct {
	// NetnsPath is the namespace to join; "" means the host's.
	NetnsPath      string
	HostsPath      string
	HostnamePath   string
	ResolvConfPath string
	Settings       *container.NetworkSettings
}

// Setup creates the container's sandbox: its namespace (bind-mounted at
// <ExecRoot>/netns/<short id>), an endpoint per network, published ports
// and the /etc files. Calling it for a container that has a sandbox returns
// that one. On error nothing is left behind. It is Prepare, then Wait.
func (s *Service) Setup(ctx context.Context, req SandboxRequest) (*Sandbox, error) {
	p, err := s.Prepare(ctx, req)
	if err != nil {
		return nil, err
	}
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	return p.Sandbox, nil
}

// Sandbox returns a container's sandbox, for example after a daemon
// restart.
func (s *Service) Sandbox(ctx context.Context, containerID string) (*Sandbox, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sb := s.sandboxes[containerID]
	if sb == nil {
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "container %s has no network sandbox", containerID)
	}
	return s.view(sb), nil
}

// teardownLocked undoes a sandbox. The record goes only when every kernel
// object is gone, so a failed teardown can be retried and the addresses
// are not handed out while still configured.
func (s *Service) teardownLocked(sb *sandboxRecord) error {
	s.stopDNS(sb.ContainerID)
	s.releasePorts(sb.ContainerID)
	if err := s.removeKernelObjects(sb); err != nil {
		return err
	}
	if err := s.deleteSandbox(sb.ContainerID); err != nil {
		return err
	}
	delete(s.sandboxes, sb.ContainerID)
	return s.applyFirewall()
}

// plan validates the request and decides everything that needs no kernel
// change: mode, networks, addresses, names of links and files.
func (s *Service) plan(req SandboxRequest) (*sandboxRecord, error) {
	extra, err := s.parseExtraHosts(req.ExtraHosts)
	if err != nil {
		return nil, err
	}
	sb := &sandboxRecord{
		ContainerID: req.ContainerID, Name: strings.TrimPrefix(req.Name, "/"), SandboxID: newID(),
		Hostname: req.Hostname, Domainname: req.Domainname, ExtraHosts: extra,
		DNS: req.DNS, DNSSearch: req.DNSSearch, DNSOptions: req.DNSOptions,
		NetnsPath:      filepath.Join(s.opts.ExecRoot, "netns", shortID(req.ContainerID)),
		HostsPath:      filepath.Join(req.Dir, "hosts"),
		HostnamePath:   filepath.Join(req.Dir, "hostname"),
		ResolvConfPath: filepath.Join(req.Dir, "resolv.conf"),
	}
	if sb.Hostname == "" {
		sb.Hostname = shortID(req.ContainerID)
	}
	mode := req.NetworkMode
	if req.JoinContainerID != "" {
		return s.planJoin(sb, req)
	}
	if strings.HasPrefix(mode, "container:") {
		return nil, fmt.Errorf("network mode %s: the caller must resolve the container: %w", mode, errdefs.ErrInvalidArgument)
	}
	if mode == "" || mode == "default" {
		mode = BridgeNetwork
	}
	primary, err := s.lookup(mode)
	if err != nil {
		return nil, err
	}
	switch primary.Driver {
	case "host":
		sb.Mode, sb.NetnsPath = "host", ""
		if hn, err := os.Hostname(); err == nil && req.Hostname == "" {
			sb.Hostname = hn
		}
		sb.Endpoints = []*endpointRecord{{NetworkID: primary.ID, EndpointID: newID()}}
		return sb, s.checkNoOtherNetworks(req, primary)
	case "null":
		sb.Mode = "none"
		sb.Endpoints = []*endpointRecord{{NetworkID: primary.ID, EndpointID: newID()}}
		return sb, s.checkNoOtherNetworks(req, primary)
	}
	return s.planBridge(sb, req, primary)
}

// planBridge adds the endpoints of a bridge sandbox: the primary network
// first (it gives the default route), then any other network the request
// names.
func (s *Service) planBridge(sb *sandboxRecord, req SandboxRequest, primary *networkRecord) (*sandboxRecord, error) {
	sb.Mode = "bridge"
	sb.Upstreams = s.upstreams(req.DNS)
	cfg := endpointConfig(s, req.Endpoints, primary)
	if len(req.Links) > 0 {
		cfg = cfg.Copy()
		if cfg == nil {
			cfg = &network.EndpointSettings{}
		}
		cfg.Links = append(cfg.Links, req.Links...)
	}
	if err := s.planEndpoint(sb, primary, cfg); err != nil {
		return nil, err
	}
	keys := slices.Sorted(maps.Keys(req.Endpoints))
	for _, key := range keys {
		n, err := s.lookup(key)
		if err != nil {
			return nil, err
		}
		if n.ID == primary.ID {
			continue
		}
		if n.Driver != "bridge" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "container cannot be connected to network endpoints: %s, %s", primary.Name, n.Name)
		}
		if err := s.planEndpoint(sb, n, req.Endpoints[key]); err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// checkNoOtherNetworks rejects extra networks beside host or none, which
// would have no namespace of their own to live in. Published ports are
// ignored in these modes, as Docker ignores them.
func (s *Service) checkNoOtherNetworks(req SandboxRequest, primary *networkRecord) error {
	for key := range req.Endpoints {
		n, err := s.lookup(key)
		if err != nil {
			return err
		}
		if n.ID != primary.ID {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, errSharedNetwork)
		}
	}
	return nil
}

func (s *Service) planJoin(sb *sandboxRecord, req SandboxRequest) (*sandboxRecord, error) {
	other := s.sandboxes[req.JoinContainerID]
	if other == nil || other.Mode == "container" {
		return nil, errdefs.Errorf(errdefs.ErrConflict, "cannot join network namespace of a non running container: %s", req.JoinContainerID)
	}
	if len(req.PortBindings) > 0 || req.PublishAll {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, errModePublish)
	}
	sb.Mode, sb.JoinContainerID, sb.NetnsPath = "container", other.ContainerID, other.NetnsPath
	sb.HostsPath, sb.HostnamePath, sb.ResolvConfPath = other.HostsPath, other.HostnamePath, other.ResolvConfPath
	return sb, nil
}

// endpointConfig finds the settings for n among EndpointsConfig, whose keys
// are network names or IDs as the user typed them.
func endpointConfig(s *Service, eps map[string]*network.EndpointSettings, n *networkRecord) *network.EndpointSettings {
	for key, cfg := range eps {
		if m, err := s.lookup(key); err == nil && m.ID == n.ID {
			return cfg
		}
	}
	return nil
}

// withContainerNS gives fn a netlink handle and an open descriptor of the
// namespace at path.
func (s *Service) withContainerNS(path string, fn func(h *netlink.Handle, fd int) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", path, err)
	}
	defer f.Close()
	h, err := netlink.NewHandleAt(netns.NsHandle(f.Fd()))
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", path, err)
	}
	defer h.Close()
	return fn(h, int(f.Fd()))
}

// attach plugs one endpoint in: a veth whose peer is created inside the
// container as ep.IfName.
func (s *Service) attach(ctr *netlink.Handle, fd int, sb *sandboxRecord, ep *endpointRecord) error {
	n := s.networks[ep.NetworkID]
	v := bridge.Veth{HostName: ep.HostVeth, PeerName: ep.IfName, Bridge: n.Bridge, MAC: ep.mac(),
		Address: netip.PrefixFrom(ep.IP, n.Subnet.Bits()), MTU: n.MTU}
	if s.gatewayEndpoint(sb) == ep {
		v.Gateway = n.Gateway
	}
	return bridge.Attach(s.host, ctr, fd, v)
}

// gatewayEndpoint is the endpoint that gives the container its default
// route: the first one on a network that is not internal.
func (s *Service) gatewayEndpoint(sb *sandboxRecord) *endpointRecord {
	for _, ep := range sb.Endpoints {
		if n := s.networks[ep.NetworkID]; n != nil && n.Driver == "bridge" && !n.Internal {
			return ep
		}
	}
	return nil
}

// primaryEndpoint is where published ports lead: the gateway endpoint.
func (s *Service) primaryEndpoint(sb *sandboxRecord) *endpointRecord {
	if sb.Mode != "bridge" {
		return nil
	}
	return s.gatewayEndpoint(sb)
}
