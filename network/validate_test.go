package network

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"berth/errdefs"
	"berth/network/internal/nstest"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// TestCheckConfig: what Docker refuses at create is refused before a
// container exists, with Docker's messages.
func TestCheckConfig(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.createNet("fixed", "10.30.0.0/24", nil)
	e.createNet("auto", "", nil)
	ep := func(key string, s network.EndpointSettings) *network.NetworkingConfig {
		return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{key: &s}}
	}
	ip := func(a string) *network.EndpointIPAMConfig {
		return &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(a)}
	}
	tests := []struct {
		name string
		cfg  container.Config
		hc   container.HostConfig
		nc   *network.NetworkingConfig
		want string // "" means valid
	}{
		{name: "default", hc: container.HostConfig{NetworkMode: "default"}},
		{name: "user network with ip and alias", hc: container.HostConfig{NetworkMode: "fixed"},
			nc: ep("fixed", network.EndpointSettings{IPAMConfig: ip("10.30.0.9"), Aliases: []string{"db"}})},
		{name: "the mode's own endpoint", hc: container.HostConfig{NetworkMode: "container:x"}, nc: ep("container:x", network.EndpointSettings{})},
		{name: "ports with host are ignored", hc: container.HostConfig{NetworkMode: "host", PortBindings: network.PortMap{network.MustParsePort("80/tcp"): nil}}},
		{name: "unknown network", hc: container.HostConfig{NetworkMode: "nope"}, want: "network nope not found"},
		{name: "unknown extra network", hc: container.HostConfig{NetworkMode: "bridge"}, nc: ep("nope", network.EndpointSettings{}), want: "network nope not found"},
		{name: "empty container", hc: container.HostConfig{NetworkMode: "container:"}, want: "invalid container format container:<name|id>"},
		{name: "container and hostname", cfg: container.Config{Hostname: "h"}, hc: container.HostConfig{NetworkMode: "container:x"}, want: errModeHostname},
		{name: "container and dns", hc: container.HostConfig{NetworkMode: "container:x", DNS: []netip.Addr{netip.MustParseAddr("10.0.0.1")}}, want: errModeDNS},
		{name: "container and dns-search", hc: container.HostConfig{NetworkMode: "container:x", DNSSearch: []string{"a"}}, want: errModeDNS},
		{name: "container and add-host", hc: container.HostConfig{NetworkMode: "container:x", ExtraHosts: []string{"a:10.0.0.1"}}, want: errModeHosts},
		{name: "container and links", hc: container.HostConfig{NetworkMode: "container:x", Links: []string{"a:b"}}, want: errContainerModeLinks},
		{name: "container and -p", hc: container.HostConfig{NetworkMode: "container:x", PortBindings: network.PortMap{network.MustParsePort("80/tcp"): nil}}, want: errModePublish},
		{name: "container and -P", hc: container.HostConfig{NetworkMode: "container:x", PublishAllPorts: true}, want: errModePublish},
		{name: "container and --expose", cfg: container.Config{ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}}}, hc: container.HostConfig{NetworkMode: "container:x"}, want: errModeExpose},
		{name: "container and a network", hc: container.HostConfig{NetworkMode: "container:x"}, nc: ep("fixed", network.EndpointSettings{}), want: errSharedNetwork},
		{name: "host and links", hc: container.HostConfig{NetworkMode: "host", Links: []string{"a:b"}}, want: errHostModeLinks},
		{name: "host and a network", hc: container.HostConfig{NetworkMode: "host"}, nc: ep("fixed", network.EndpointSettings{}), want: errSharedNetwork},
		{name: "host and mac", hc: container.HostConfig{NetworkMode: "host"}, nc: ep("host", network.EndpointSettings{MacAddress: network.HardwareAddr{2, 0, 0, 0, 0, 1}}), want: errModeMAC},
		{name: "none and a network", hc: container.HostConfig{NetworkMode: "none"}, nc: ep("fixed", network.EndpointSettings{}), want: errNoneNetwork},
		{name: "ip on the default bridge", hc: container.HostConfig{NetworkMode: "bridge"}, nc: ep("bridge", network.EndpointSettings{IPAMConfig: ip("172.17.0.9")}), want: errIPOnDefault},
		{name: "alias on the default bridge", hc: container.HostConfig{NetworkMode: "default"}, nc: ep("default", network.EndpointSettings{Aliases: []string{"x"}}), want: errAliasOnDefault},
		{name: "ip without a user subnet", hc: container.HostConfig{NetworkMode: "auto"}, nc: ep("auto", network.EndpointSettings{IPAMConfig: ip("172.18.0.9")}), want: errIPNoSubnet},
		{name: "ip outside the subnet", hc: container.HostConfig{NetworkMode: "fixed"}, nc: ep("fixed", network.EndpointSettings{IPAMConfig: ip("10.31.0.9")}), want: "no configured subnet or ip-range contain the IP address 10.31.0.9"},
		{name: "multicast mac", hc: container.HostConfig{NetworkMode: "bridge"}, nc: ep("bridge", network.EndpointSettings{MacAddress: network.HardwareAddr{1, 0, 0, 0, 0, 1}}), want: "invalid MAC address 01:00:00:00:00:01"},
		{name: "ipv6 ip", hc: container.HostConfig{NetworkMode: "fixed"}, nc: ep("fixed", network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("fd00::9")}}), want: "IPv6 is not enabled on network fixed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := e.svc.CheckConfig(context.Background(), &tt.cfg, &tt.hc, tt.nc)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("err = %v, want %q", err, tt.want)
			case tt.want != "" && !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrNotFound):
				t.Fatalf("err %v has no InvalidArgument or NotFound kind", err)
			}
		})
	}
}

// TestMACAddress: --mac-address is the interface's address and what
// inspect shows; without it the address is 02:42 and the IPv4 bytes.
func TestMACAddress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	want := network.HardwareAddr{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	sb := e.container("m", func(r *SandboxRequest) {
		r.Endpoints = map[string]*network.EndpointSettings{"bridge": {MacAddress: want}}
	})
	plain := e.container("p", nil)
	for _, tc := range []struct {
		sb   *Sandbox
		want string
	}{{sb, "02:11:22:33:44:55"}, {plain, "02:42:ac:11:00:03"}} {
		if got := tc.sb.Settings.Networks["bridge"].MacAddress.String(); got != tc.want {
			t.Errorf("inspect MacAddress = %s, want %s", got, tc.want)
		}
		l, err := nstest.Handle(t, tc.sb.NetnsPath).LinkByName("eth0")
		if err != nil || l.Attrs().HardwareAddr.String() != tc.want {
			t.Errorf("eth0 address = %v (%v), want %s", l, err, tc.want)
		}
	}
}
