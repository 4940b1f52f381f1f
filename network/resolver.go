package network

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"berth/network/dns"
	"berth/network/firewall"
	"berth/network/nsenter"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
)

// dnsView is an immutable snapshot of who is where on the user networks.
// The DNS servers read it without locks; every change of sandboxes or
// networks publishes a new one (refreshDNS), so a query never waits for a
// container start and stopping a server under the service lock cannot
// deadlock with a query in flight.
type dnsView struct {
	// member lists the user networks of each container.
	member map[string][]string
	nets   map[string]*dnsNet
	// links maps, per container, a link alias to the linked container's
	// name: names only that container resolves.
	links map[string]map[string]string
	// upstreams are, per container, the servers other names go to; none
	// for a container with no way out (only internal networks), whose
	// queries must not leave through the daemon either.
	upstreams map[string][]string
}

type dnsNet struct {
	name    string
	entries []dnsEntry
}

type dnsEntry struct {
	containerID string
	name        string
	aliases     []string
	ip          netip.Addr
}

// refreshDNS publishes the current state to the DNS servers. Called with
// s.mu held.
func (s *Service) refreshDNS() {
	v := &dnsView{member: map[string][]string{}, nets: map[string]*dnsNet{}, links: map[string]map[string]string{}, upstreams: map[string][]string{}}
	for _, sb := range s.sandboxes {
		if s.gatewayEndpoint(sb) != nil {
			v.upstreams[sb.ContainerID] = sb.Upstreams
		}
		for _, ep := range sb.Endpoints {
			n := s.networks[ep.NetworkID]
			if n == nil || n.Driver != "bridge" || n.isDefault() {
				continue
			}
			dn := v.nets[n.ID]
			if dn == nil {
				dn = &dnsNet{name: strings.ToLower(n.Name)}
				v.nets[n.ID] = dn
			}
			dn.entries = append(dn.entries, dnsEntry{containerID: sb.ContainerID, name: strings.ToLower(sb.Name), aliases: lower(ep.Aliases), ip: ep.IP})
			v.member[sb.ContainerID] = append(v.member[sb.ContainerID], n.ID)
			for _, l := range ep.Links {
				name, alias, _ := strings.Cut(l, ":")
				if v.links[sb.ContainerID] == nil {
					v.links[sb.ContainerID] = map[string]string{}
				}
				v.links[sb.ContainerID][strings.ToLower(alias)] = strings.ToLower(name)
			}
		}
	}
	s.dnsView.Store(v)
}

func lower(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToLower(s)
	}
	return out
}

// containerResolver answers for one container from the latest dnsView.
type containerResolver struct {
	s           *Service
	containerID string
}

// LookupIPv4 resolves a container name, a network alias, a short id, or
// "<name>.<network>" on the networks this container is on.
func (r containerResolver) LookupIPv4(name string) ([]netip.Addr, bool) {
	v := r.s.dnsView.Load()
	if v == nil {
		return nil, false
	}
	if target, ok := v.links[r.containerID][name]; ok {
		name = target
	}
	var out []netip.Addr
	for _, netID := range v.member[r.containerID] {
		dn := v.nets[netID]
		q := strings.TrimSuffix(name, "."+dn.name)
		for _, e := range dn.entries {
			if q == e.name || q == shortID(e.containerID) || q == e.containerID || slices.Contains(e.aliases, q) {
				if !slices.Contains(out, e.ip) {
					out = append(out, e.ip)
				}
			}
		}
	}
	return out, len(out) > 0
}

// Upstreams are the container's forwarders.
func (r containerResolver) Upstreams() []string {
	if v := r.s.dnsView.Load(); v != nil {
		return v.upstreams[r.containerID]
	}
	return nil
}

// LookupPTR names an address as "<container>.<network>", as Docker does.
func (r containerResolver) LookupPTR(addr netip.Addr) (string, bool) {
	v := r.s.dnsView.Load()
	if v == nil {
		return "", false
	}
	for _, netID := range v.member[r.containerID] {
		dn := v.nets[netID]
		for _, e := range dn.entries {
			if e.ip == addr {
				return e.name + "." + dn.name, true
			}
		}
	}
	return "", false
}

// startDNS serves the embedded DNS server inside the container: it
// listens on 127.0.0.11 at ephemeral ports and an nftables table in the
// container's namespace sends port 53 there, which leaves port 53 free for
// the container's own use.
func (s *Service) startDNS(ctx context.Context, sb *sandboxRecord) error {
	if !s.embeddedDNS(sb) || s.dns[sb.ContainerID] != nil {
		return nil
	}
	var udp net.PacketConn
	var tcp net.Listener
	err := s.withContainerNS(sb.NetnsPath, func(_ *netlink.Handle, fd int) error {
		return nsenter.DoFd(fd, func() error {
			var err error
			if udp, err = net.ListenPacket("udp4", dnsAddress+":0"); err != nil {
				return err
			}
			if tcp, err = net.Listen("tcp4", dnsAddress+":0"); err != nil {
				udp.Close()
				return err
			}
			conn, err := nftables.New(nftables.WithNetNSFd(fd), nftables.AsLasting())
			if err == nil {
				err = firewall.ApplyResolver(conn, s.opts.TableName, uint16(udp.LocalAddr().(*net.UDPAddr).Port), uint16(tcp.Addr().(*net.TCPAddr).Port))
				err = errors.Join(err, conn.CloseLasting())
			}
			if err != nil {
				udp.Close()
				tcp.Close()
			}
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("embedded DNS for %s: %w", sb.ContainerID, err)
	}
	srv := dns.NewServer(containerResolver{s: s, containerID: sb.ContainerID}, s.upstreamDialer(sb.NetnsPath), s.log)
	srv.Serve(udp, tcp)
	s.dns[sb.ContainerID] = srv
	return nil
}

func (s *Service) stopDNS(containerID string) {
	if srv := s.dns[containerID]; srv != nil {
		srv.Close()
		delete(s.dns, containerID)
	}
}

// upstreamDialer reaches loopback resolvers (systemd-resolved, dnsmasq)
// from the host namespace, and all others from the container's, so that
// forwarded queries leave as the container's own traffic would.
func (s *Service) upstreamDialer(netnsPath string) dns.Dialer {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return nil, err
		}
		var conn net.Conn
		dial := func() error {
			var d net.Dialer
			var err error
			conn, err = d.DialContext(ctx, network, addr)
			return err
		}
		if ap.Addr().IsLoopback() {
			err = nsenter.DoFd(int(s.hostNS.Fd()), dial)
		} else {
			err = nsenter.Do(netnsPath, dial)
		}
		return conn, err
	}
}
