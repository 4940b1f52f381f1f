package network

import (
	"context"
	"net"
	"strings"

	"berth/errdefs"
	"berth/network/ipam"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// Docker's messages for networking options that cannot go together.
const (
	errContainerModeLinks = "conflicting options: container type network can't be used with links. This would result in undefined behavior"
	errHostModeLinks      = "conflicting options: host type networking can't be used with links. This would result in undefined behavior"
	errModeHostname       = "conflicting options: hostname and the network mode"
	errModeDNS            = "conflicting options: dns and the network mode"
	errModeHosts          = "conflicting options: custom host-to-IP mapping and the network mode"
	errModeMAC            = "conflicting options: mac-address and the network mode"
	errModePublish        = "conflicting options: port publishing and the container type network mode"
	errModeExpose         = "conflicting options: port exposing and the container type network mode"
	errSharedNetwork      = "container sharing network namespace with another container or host cannot be connected to any other network"
	errNoneNetwork        = "container cannot be connected to multiple networks with one of the networks in private (none) mode"
	errIPOnDefault        = "user specified IP address is supported on user defined networks only"
	errIPNoSubnet         = "user specified IP address is supported only when connecting to networks with user configured subnets"
	errAliasOnDefault     = "network-scoped alias is supported only for containers in user defined networks"
)

// CheckConfig validates a container's networking when it is created, as
// Docker does, so that a container that could never start is not created:
// conflicting options of the network mode, networks that do not exist, and
// --ip or --network-alias where they cannot apply. What depends on other
// containers (a free address, the container to join) is checked at start.
func (s *Service) CheckConfig(ctx context.Context, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) error {
	if cfg == nil {
		cfg = &container.Config{}
	}
	mode := string(hc.NetworkMode)
	if err := checkModeOptions(cfg, hc); err != nil {
		return err
	}
	if strings.HasPrefix(mode, "container:") {
		// Clients send the mode itself as an endpoint; any other network
		// would need a namespace of this container's own.
		var keys map[string]*network.EndpointSettings
		if nc != nil {
			keys = nc.EndpointsConfig
		}
		for key := range keys {
			if key != mode {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, errSharedNetwork)
			}
		}
		return nil
	}
	if mode == "" || mode == "default" {
		mode = BridgeNetwork
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	primary, err := s.lookup(mode)
	if err != nil {
		return err
	}
	if nc == nil {
		return nil
	}
	for key, ep := range nc.EndpointsConfig {
		if key == "default" {
			key = BridgeNetwork
		}
		n, err := s.lookup(key)
		if err != nil {
			return err
		}
		if n.ID != primary.ID {
			switch {
			case primary.Driver == "host" || n.Driver == "host":
				return errdefs.Errorf(errdefs.ErrInvalidArgument, errSharedNetwork)
			case primary.Driver == "null" || n.Driver == "null":
				return errdefs.Errorf(errdefs.ErrInvalidArgument, errNoneNetwork)
			}
		}
		if ep != nil && len(ep.MacAddress) > 0 && primary.Driver == "host" {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, errModeMAC)
		}
		if err := checkEndpoint(n, ep); err != nil {
			return err
		}
	}
	return nil
}

// checkModeOptions rejects what makes no sense with host or
// container:<x> networking (Docker's validateNetMode).
func checkModeOptions(cfg *container.Config, hc *container.HostConfig) error {
	mode := hc.NetworkMode
	if strings.HasPrefix(string(mode), "container:") && strings.TrimPrefix(string(mode), "container:") == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Invalid network mode: invalid container format container:<name|id>")
	}
	if mode.IsHost() && len(hc.Links) > 0 {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, errHostModeLinks)
	}
	if !mode.IsContainer() {
		return nil
	}
	var msg string
	switch {
	case cfg.Hostname != "" || cfg.Domainname != "":
		msg = errModeHostname
	case len(hc.Links) > 0:
		msg = errContainerModeLinks
	case len(hc.DNS) > 0 || len(hc.DNSSearch) > 0 || len(hc.DNSOptions) > 0:
		msg = errModeDNS
	case len(hc.ExtraHosts) > 0:
		msg = errModeHosts
	case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
		msg = errModePublish
	case len(cfg.ExposedPorts) > 0:
		msg = errModeExpose
	default:
		return nil
	}
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", msg)
}

// checkEndpoint validates one network's --ip and --network-alias.
func checkEndpoint(n *networkRecord, ep *network.EndpointSettings) error {
	if ep == nil {
		return nil
	}
	userDefined := n.Driver == "bridge" && !n.isDefault()
	if ep.IPAMConfig != nil && (ep.IPAMConfig.IPv4Address.IsValid() || ep.IPAMConfig.IPv6Address.IsValid()) {
		ip := ep.IPAMConfig.IPv4Address
		switch {
		case !userDefined:
			return errdefs.Errorf(errdefs.ErrInvalidArgument, errIPOnDefault)
		case ep.IPAMConfig.IPv6Address.IsValid():
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid IPv6 address %s: IPv6 is not enabled on network %s", ep.IPAMConfig.IPv6Address, n.Name)
		case !ip.Is4():
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid IPv4 address: %s", ip)
		case !n.UserSubnet:
			return errdefs.Errorf(errdefs.ErrInvalidArgument, errIPNoSubnet)
		}
		r := ipam.Range{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway}
		if err := r.CheckStatic(ip); err != nil {
			return err
		}
	}
	if len(ep.MacAddress) > 0 {
		if err := checkMAC(net.HardwareAddr(ep.MacAddress)); err != nil {
			return err
		}
	}
	if len(ep.Aliases) > 0 && !userDefined {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, errAliasOnDefault)
	}
	return nil
}
