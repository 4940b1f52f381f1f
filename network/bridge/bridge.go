// Package bridge manages the links of berth's bridge networks over netlink:
// the Linux bridge that is a network's gateway, and the veth pairs that
// plug each container's namespace into it.
//
// Every function works on netlink handles bound to a namespace, so the
// caller decides which namespace is "the host" (the daemon's own, or a
// throwaway one in tests).
package bridge

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"

	"berth/network/nsenter"

	"github.com/vishvananda/netlink"
)

// Bridge describes a network's bridge device.
type Bridge struct {
	Name string
	// Address is the gateway with the subnet's prefix length, e.g.
	// 172.17.0.1/16.
	Address netip.Prefix
	// MTU of the bridge and of the veths plugged into it; 0 keeps the
	// kernel's 1500.
	MTU int
}

// Ensure makes the bridge exist, carry its gateway address and be up. It is
// idempotent, so a daemon start repairs whatever a crash or an operator
// changed. The bridge gets the MAC 02:42 + gateway bytes, stable whatever
// ports join, so the containers' ARP caches never go stale.
func Ensure(h *netlink.Handle, b Bridge) (netlink.Link, error) {
	link, err := h.LinkByName(b.Name)
	var notFound netlink.LinkNotFoundError
	switch {
	case errors.As(err, &notFound):
		gw := b.Address.Addr().As4()
		attrs := netlink.LinkAttrs{Name: b.Name, MTU: b.MTU, HardwareAddr: net.HardwareAddr{0x02, 0x42, gw[0], gw[1], gw[2], gw[3]}}
		if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
			return nil, fmt.Errorf("create bridge %s: %w", b.Name, err)
		}
		if link, err = h.LinkByName(b.Name); err != nil {
			return nil, fmt.Errorf("bridge %s: %w", b.Name, err)
		}
	case err != nil:
		return nil, fmt.Errorf("bridge %s: %w", b.Name, err)
	case link.Type() != "bridge":
		return nil, fmt.Errorf("interface %s exists and is a %s, not a bridge", b.Name, link.Type())
	}
	if err := ensureAddr(h, link, b.Address); err != nil {
		return nil, err
	}
	if b.MTU > 0 && link.Attrs().MTU != b.MTU {
		if err := h.LinkSetMTU(link, b.MTU); err != nil {
			return nil, fmt.Errorf("bridge %s mtu: %w", b.Name, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("bridge %s up: %w", b.Name, err)
	}
	if link, err = h.LinkByName(b.Name); err != nil {
		return nil, fmt.Errorf("bridge %s: %w", b.Name, err)
	}
	return link, nil
}

func ensureAddr(h *netlink.Handle, link netlink.Link, want netip.Prefix) error {
	addrs, err := h.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("bridge %s addresses: %w", link.Attrs().Name, err)
	}
	for _, a := range addrs {
		ones, _ := a.Mask.Size()
		if ip, ok := netip.AddrFromSlice(a.IP.To4()); ok && ip == want.Addr() && ones == want.Bits() {
			return nil
		}
	}
	// A different address is a leftover of an older configuration (--bip
	// changed): the bridge must route exactly the network's subnet.
	for _, a := range addrs {
		if err := h.AddrDel(link, &a); err != nil {
			return fmt.Errorf("bridge %s: remove stale address %s: %w", link.Attrs().Name, a.IPNet, err)
		}
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: want.Addr().AsSlice(), Mask: net.CIDRMask(want.Bits(), 32)}}
	if err := h.AddrAdd(link, addr); err != nil {
		return fmt.Errorf("bridge %s: add address %s: %w", link.Attrs().Name, want, err)
	}
	return nil
}

// Delete removes a bridge; a missing one is not an error.
func Delete(h *netlink.Handle, name string) error {
	link, err := h.LinkByName(name)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("bridge %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil {
		return fmt.Errorf("delete bridge %s: %w", name, err)
	}
	return nil
}

// Sysctl writes a /proc/sys value as seen from the namespace nsFd (the
// net.* tree is per namespace, and per thread inside a process).
func Sysctl(nsFd int, key, value string) error {
	return nsenter.DoFd(nsFd, func() error {
		p := filepath.Join("/proc/sys", filepath.FromSlash(key))
		if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
		return nil
	})
}

// Veth is one endpoint's link pair: HostName stays on the host, plugged
// into Bridge; the peer is created directly inside the container's
// namespace as PeerName.
type Veth struct {
	HostName string
	PeerName string
	Bridge   string
	MAC      net.HardwareAddr
	// Address is the container's address with the subnet's length.
	Address netip.Prefix
	// Gateway, when valid, becomes the container's default route.
	Gateway netip.Addr
	MTU     int
}

// Attach creates and configures the pair. host and ctr are handles in the
// host and container namespaces, ctrNsFd the container namespace. On error
// the pair is removed again.
func Attach(host, ctr *netlink.Handle, ctrNsFd int, v Veth) (err error) {
	br, err := host.LinkByName(v.Bridge)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", v.Bridge, err)
	}
	mtu := v.MTU
	if mtu == 0 {
		mtu = br.Attrs().MTU
	}
	link := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: v.HostName, MTU: mtu, MasterIndex: br.Attrs().Index},
		PeerName:         v.PeerName,
		PeerHardwareAddr: v.MAC,
		PeerNamespace:    netlink.NsFd(ctrNsFd),
		PeerMTU:          uint32(mtu),
	}
	if err := host.LinkAdd(link); err != nil {
		return fmt.Errorf("create veth %s: %w", v.HostName, err)
	}
	defer func() {
		if err != nil {
			_ = Detach(host, v.HostName)
		}
	}()
	hostLink, err := host.LinkByName(v.HostName)
	if err != nil {
		return fmt.Errorf("veth %s: %w", v.HostName, err)
	}
	// Hairpin lets a container reach itself through a published port: the
	// DNATed packet leaves through the port it came in by.
	if err := host.LinkSetHairpin(hostLink, true); err != nil {
		return fmt.Errorf("veth %s hairpin: %w", v.HostName, err)
	}
	if err := host.LinkSetUp(hostLink); err != nil {
		return fmt.Errorf("veth %s up: %w", v.HostName, err)
	}
	return configurePeer(ctr, v)
}

func configurePeer(ctr *netlink.Handle, v Veth) error {
	peer, err := ctr.LinkByName(v.PeerName)
	if err != nil {
		return fmt.Errorf("container interface %s: %w", v.PeerName, err)
	}
	addr := &netlink.Addr{IPNet: &net.IPNet{IP: v.Address.Addr().AsSlice(), Mask: net.CIDRMask(v.Address.Bits(), 32)}}
	if err := ctr.AddrAdd(peer, addr); err != nil {
		return fmt.Errorf("container interface %s: add address %s: %w", v.PeerName, v.Address, err)
	}
	if err := ctr.LinkSetUp(peer); err != nil {
		return fmt.Errorf("container interface %s up: %w", v.PeerName, err)
	}
	if v.Gateway.IsValid() {
		route := &netlink.Route{LinkIndex: peer.Attrs().Index, Gw: v.Gateway.AsSlice()}
		if err := ctr.RouteAdd(route); err != nil && !errors.Is(err, syscall.EEXIST) {
			return fmt.Errorf("container default route via %s: %w", v.Gateway, err)
		}
	}
	return nil
}

// Detach deletes the host side of a pair, which takes the peer with it. A
// missing link is not an error.
func Detach(host *netlink.Handle, hostName string) error {
	link, err := host.LinkByName(hostName)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("veth %s: %w", hostName, err)
	}
	if err := host.LinkDel(link); err != nil {
		return fmt.Errorf("delete veth %s: %w", hostName, err)
	}
	return nil
}

// Ports lists the names of the links plugged into the bridge, for finding
// veths a crash left behind.
func Ports(h *netlink.Handle, bridgeName string) ([]string, error) {
	br, err := h.LinkByName(bridgeName)
	var notFound netlink.LinkNotFoundError
	if errors.As(err, &notFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", bridgeName, err)
	}
	links, err := listLinks(h)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range links {
		if l.Attrs().MasterIndex == br.Attrs().Index {
			out = append(out, l.Attrs().Name)
		}
	}
	return out, nil
}

// listLinks retries a dump the kernel interrupted because links changed
// while it ran.
func listLinks(h *netlink.Handle) ([]netlink.Link, error) {
	var err error
	for range 5 {
		var links []netlink.Link
		if links, err = h.LinkList(); err == nil {
			return links, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("list links: %w", err)
}

// RouteList returns the IPv4 routes of the namespace, retrying
// interrupted dumps; used to find subnets already in use on the host.
func RouteList(h *netlink.Handle) ([]netlink.Route, error) {
	var err error
	for range 5 {
		var routes []netlink.Route
		if routes, err = h.RouteList(nil, netlink.FAMILY_V4); err == nil {
			return routes, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, fmt.Errorf("list routes: %w", err)
}

// SetDefaultRoute points the namespace's default route at gw through the
// interface ifName, replacing any other default route.
func SetDefaultRoute(h *netlink.Handle, ifName string, gw netip.Addr) error {
	link, err := h.LinkByName(ifName)
	if err != nil {
		return fmt.Errorf("interface %s: %w", ifName, err)
	}
	if err := h.RouteReplace(&netlink.Route{LinkIndex: link.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
		return fmt.Errorf("default route via %s: %w", gw, err)
	}
	return nil
}
