package api

import (
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// inspectDoc is GET /containers/{id}/json as API 1.51 and older send it:
// NetworkSettings still carries the fields deprecated in 1.21 and dropped
// in 1.52, which scripts read as {{.NetworkSettings.IPAddress}}.
type inspectDoc struct {
	container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

// legacyNetworkSettings orders its fields as dockerd 28 does.
type legacyNetworkSettings struct {
	Bridge                 string
	SandboxID              string
	SandboxKey             string
	Ports                  network.PortMap
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []legacyAddress
	SecondaryIPv6Addresses []legacyAddress
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
	Networks               map[string]*network.EndpointSettings
}

// legacyInspect fills the deprecated top-level address fields from the
// default bridge network's endpoint, which is where dockerd took them.
func legacyInspect(doc container.InspectResponse) inspectDoc {
	out := inspectDoc{InspectResponse: doc}
	ns := doc.NetworkSettings
	if ns == nil {
		return out
	}
	l := &legacyNetworkSettings{SandboxID: ns.SandboxID, SandboxKey: ns.SandboxKey, Ports: ns.Ports, Networks: ns.Networks}
	if l.Ports == nil {
		l.Ports = network.PortMap{}
	}
	if ep := ns.Networks["bridge"]; ep != nil {
		l.EndpointID = ep.EndpointID
		l.Gateway = addrString(ep.Gateway.IsValid(), ep.Gateway.String())
		l.IPAddress = addrString(ep.IPAddress.IsValid(), ep.IPAddress.String())
		l.IPPrefixLen = ep.IPPrefixLen
		l.IPv6Gateway = addrString(ep.IPv6Gateway.IsValid(), ep.IPv6Gateway.String())
		l.GlobalIPv6Address = addrString(ep.GlobalIPv6Address.IsValid(), ep.GlobalIPv6Address.String())
		l.GlobalIPv6PrefixLen = ep.GlobalIPv6PrefixLen
		if len(ep.MacAddress) > 0 {
			l.MacAddress = ep.MacAddress.String()
		}
	}
	out.NetworkSettings = l
	return out
}

func addrString(valid bool, s string) string {
	if !valid {
		return ""
	}
	return s
}

// legacyAddress is an entry of the always-null Secondary*Addresses lists.
type legacyAddress struct {
	Addr      string
	PrefixLen int
}
