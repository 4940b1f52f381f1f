package network

import (
	"slices"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// view is the Sandbox of a record: paths plus the wire NetworkSettings.
func (s *Service) view(sb *sandboxRecord) *Sandbox {
	return &Sandbox{
		NetnsPath: sb.NetnsPath, HostsPath: sb.HostsPath, HostnamePath: sb.HostnamePath,
		ResolvConfPath: sb.ResolvConfPath, Settings: s.settings(sb),
	}
}

// settings is NetworkSettings as docker inspect shows it: per network the
// address, gateway, MAC (02:42 + the address unless --mac-address) and ids; Ports maps each
// exposed or published port to its host bindings (null when unpublished).
func (s *Service) settings(sb *sandboxRecord) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: network.PortMap{}, Networks: map[string]*network.EndpointSettings{}}
	if sb.Mode == "container" {
		return ns
	}
	ns.SandboxID, ns.SandboxKey = sb.SandboxID, sb.NetnsPath
	for _, p := range sb.Ports {
		port, ok := network.PortFrom(p.ContainerPort, network.IPProtocol(p.Proto))
		if !ok {
			continue
		}
		ns.Ports[port] = append(ns.Ports[port], network.PortBinding{HostIP: p.HostIP, HostPort: itoa(p.HostPort)})
	}
	for _, e := range sb.Exposed {
		if port, err := network.ParsePort(e); err == nil {
			if _, ok := ns.Ports[port]; !ok {
				ns.Ports[port] = nil
			}
		}
	}
	for _, ep := range sb.Endpoints {
		n := s.networks[ep.NetworkID]
		if n == nil {
			continue
		}
		ns.Networks[n.Name] = s.endpointSettings(sb, n, ep)
	}
	return ns
}

func (s *Service) endpointSettings(sb *sandboxRecord, n *networkRecord, ep *endpointRecord) *network.EndpointSettings {
	es := &network.EndpointSettings{NetworkID: n.ID, EndpointID: ep.EndpointID, Aliases: slices.Clone(ep.Aliases)}
	if ep.StaticIP.IsValid() {
		es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ep.StaticIP}
	}
	if !ep.IP.IsValid() {
		return es
	}
	es.IPAddress, es.IPPrefixLen = ep.IP, n.Subnet.Bits()
	es.MacAddress = network.HardwareAddr(ep.mac())
	es.Gateway = n.Gateway
	if !n.isDefault() {
		es.DNSNames = dnsNames(sb, ep)
		es.Links = slices.Clone(ep.Links)
	}
	return es
}

// dnsNames are the names the embedded DNS answers for the endpoint.
func dnsNames(sb *sandboxRecord, ep *endpointRecord) []string {
	names := []string{}
	if sb.Name != "" {
		names = append(names, sb.Name)
	}
	names = append(names, shortID(sb.ContainerID))
	for _, a := range ep.Aliases {
		if !slices.Contains(names, a) {
			names = append(names, a)
		}
	}
	return names
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }
