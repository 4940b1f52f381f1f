package network

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"berth/errdefs"
	"berth/network/ipam"

	"github.com/moby/moby/api/types/network"
)

// planEndpoint adds an endpoint on n to sb: validates aliases and --ip and
// takes the address (the lowest free one unless asked for).
func (s *Service) planEndpoint(sb *sandboxRecord, n *networkRecord, cfg *network.EndpointSettings) error {
	for _, ep := range sb.Endpoints {
		if ep.NetworkID == n.ID {
			return errdefs.Errorf(errdefs.ErrConflict, "endpoint with name %s already exists in network %s", sb.Name, n.Name)
		}
	}
	ep := &endpointRecord{NetworkID: n.ID, EndpointID: newID(), IfName: s.nextIfName(sb)}
	ep.HostVeth = "veth" + ep.EndpointID[:7]
	if cfg != nil {
		if len(cfg.Aliases) > 0 && n.isDefault() {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "network-scoped alias is supported only for containers in user defined networks")
		}
		ep.Aliases = slices.Clone(cfg.Aliases)
		if len(cfg.MacAddress) > 0 {
			if err := checkMAC(net.HardwareAddr(cfg.MacAddress)); err != nil {
				return err
			}
			ep.MAC = net.HardwareAddr(cfg.MacAddress).String()
		}
		links, err := s.parseLinks(sb, n, cfg.Links)
		if err != nil {
			return err
		}
		ep.Links = links
		if cfg.IPAMConfig != nil {
			if cfg.IPAMConfig.IPv6Address.IsValid() {
				return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid IPv6 address %s: IPv6 is not enabled on network %s", cfg.IPAMConfig.IPv6Address, n.Name)
			}
			ep.StaticIP = cfg.IPAMConfig.IPv4Address
		}
	}
	if ep.StaticIP.IsValid() && !ep.StaticIP.Is4() {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid IPv4 address: %s", ep.StaticIP)
	}
	ip, err := s.allocateIP(n, ep.StaticIP)
	if err != nil {
		return err
	}
	ep.IP = ip
	sb.Endpoints = append(sb.Endpoints, ep)
	return nil
}

// allocateIP takes static when given, else the lowest free address. An
// address is taken while any recorded endpoint holds it, so it is never
// handed out twice and is free again once its sandbox is gone.
func (s *Service) allocateIP(n *networkRecord, static netip.Addr) (netip.Addr, error) {
	taken := s.addressesInUse(n.ID)
	r := ipam.Range{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway}
	if static.IsValid() {
		if n.isDefault() {
			return netip.Addr{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "user specified IP address is supported on user defined networks only")
		}
		if !n.UserSubnet {
			return netip.Addr{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "user specified IP address is supported only when connecting to networks with user configured subnets")
		}
		if err := r.CheckStatic(static); err != nil {
			return netip.Addr{}, err
		}
		if taken[static] {
			return netip.Addr{}, errdefs.Errorf(errdefs.ErrConflict, "failed to set up container networking: Address already in use: %s on network %s", static, n.Name)
		}
		return static, nil
	}
	ip, ok := r.Lowest(func(a netip.Addr) bool { return taken[a] })
	if !ok {
		return netip.Addr{}, errdefs.Errorf(errdefs.ErrUnavailable, "no available IPv4 addresses on network %s (%s)", n.Name, n.Subnet)
	}
	return ip, nil
}

func (s *Service) addressesInUse(networkID string) map[netip.Addr]bool {
	taken := map[netip.Addr]bool{}
	for _, sb := range s.holders() {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == networkID && ep.IP.IsValid() {
				taken[ep.IP] = true
			}
		}
	}
	return taken
}

// checkMAC accepts what can be a container's own address: six bytes,
// unicast, not all zeros.
func checkMAC(hw net.HardwareAddr) error {
	if len(hw) != 6 || hw[0]&1 == 1 || slices.Equal(hw, make(net.HardwareAddr, 6)) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid MAC address %s: it must be a unicast address of 6 bytes", hw)
	}
	return nil
}

// nextIfName is the first free ethN in the container.
func (s *Service) nextIfName(sb *sandboxRecord) string {
	for i := 0; ; i++ {
		name := fmt.Sprintf("eth%d", i)
		if !slices.ContainsFunc(sb.Endpoints, func(ep *endpointRecord) bool { return ep.IfName == name }) {
			return name
		}
	}
}

// parseExtraHosts validates --add-host entries ("name:ip" or "name=ip") and
// resolves the special address host-gateway to the default bridge's
// gateway, as Docker does.
func (s *Service) parseExtraHosts(entries []string) ([]string, error) {
	var out []string
	for _, e := range entries {
		sep := ":"
		if strings.Contains(e, "=") {
			sep = "="
		}
		name, ipText, ok := strings.Cut(e, sep)
		if !ok || name == "" || ipText == "" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid argument %q for add-host: expected host:ip", e)
		}
		if ipText == "host-gateway" {
			if n := s.findByName(BridgeNetwork); n != nil {
				ipText = n.Gateway.String()
			}
		}
		ip, err := netip.ParseAddr(strings.Trim(ipText, "[]"))
		if err != nil {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid IP address in add-host: %q", ipText)
		}
		out = append(out, name+":"+ip.String())
	}
	return out, nil
}

// parseLinks normalises --link entries to "name:alias" and checks that the
// linked container has a sandbox, on the default bridge when the link is
// made there, as Docker requires.
func (s *Service) parseLinks(sb *sandboxRecord, n *networkRecord, links []string) ([]string, error) {
	var out []string
	for _, l := range links {
		name, alias, ok := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		alias = alias[strings.LastIndex(alias, "/")+1:]
		if !ok || alias == "" {
			alias = name
		}
		if name == "" {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid link %q", l)
		}
		target := s.sandboxByName(name)
		if target == nil {
			return nil, errdefs.Errorf(errdefs.ErrNotFound, "could not get container for %s", name)
		}
		if n.isDefault() && !slices.ContainsFunc(target.Endpoints, func(ep *endpointRecord) bool { return ep.NetworkID == n.ID }) {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "Cannot link to /%s, as it does not belong to the default network", name)
		}
		out = append(out, target.Name+":"+alias)
	}
	return out, nil
}

func (s *Service) sandboxByName(name string) *sandboxRecord {
	for _, sb := range s.sandboxes {
		if sb.Name == name || sb.ContainerID == name || len(name) >= shortIDLen && strings.HasPrefix(sb.ContainerID, name) {
			return sb
		}
	}
	return nil
}
