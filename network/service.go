package network

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"berth/errdefs"
	"berth/network/bridge"
	"berth/network/dns"
	"berth/network/firewall"
	"berth/network/ipam"
	"berth/network/nsenter"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	bolt "go.etcd.io/bbolt"
)

// Service owns berth's networks and the containers' network sandboxes. Its
// methods are safe for concurrent use; kernel changes are serialised, except
// the deletion of a torn-down sandbox's veths and namespace (see Teardown).
type Service struct {
	opts  Options
	log   *slog.Logger
	db    *bolt.DB
	pools []ipam.Pool

	hostNS *os.File
	host   *netlink.Handle
	nft    *nftables.Conn

	mu        sync.RWMutex
	networks  map[string]*networkRecord
	sandboxes map[string]*sandboxRecord
	// releasing are the sandboxes Teardown is deleting the kernel objects
	// of, by container id.
	releasing map[string]*release
	// building are the sandboxes Prepare returned whose plumbing is still
	// being made, by container id.
	building map[string]*Prepared
	// releaseHook, when set (by tests), runs in Teardown between a
	// sandbox's release and the deletion of its kernel objects.
	releaseHook func(containerID string)
	// reserved holds the sockets bound on each sandbox's published host
	// ports.
	reserved map[string][]*os.File
	dns      map[string]*dns.Server
	dnsView  atomic.Pointer[dnsView]
}

// New opens the network state: it restores the persisted networks and
// sandboxes, (re)creates the bridges and the nftables table, and removes
// what a crashed daemon left behind (veths and namespaces of sandboxes that
// no longer exist). Calling it again on the same state is harmless.
func New(ctx context.Context, opts Options) (_ *Service, err error) {
	opts = opts.withDefaults()
	if opts.DB == nil || opts.ExecRoot == "" {
		return nil, fmt.Errorf("network service: DB and ExecRoot are required: %w", errdefs.ErrInvalidArgument)
	}
	pools, err := opts.pools()
	if err != nil {
		return nil, err
	}
	bip, err := opts.bip()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.ExecRoot, "netns"), 0o711); err != nil {
		return nil, fmt.Errorf("network service: %w", err)
	}
	s := &Service{opts: opts, log: opts.Logger, db: opts.DB, pools: pools,
		reserved: map[string][]*os.File{}, dns: map[string]*dns.Server{},
		releasing: map[string]*release{}, building: map[string]*Prepared{}}
	defer func() {
		if err != nil {
			s.stopServing()
			s.closeHandles()
		}
	}()
	if err := s.openHost(); err != nil {
		return nil, err
	}
	if err := initBuckets(s.db); err != nil {
		return nil, fmt.Errorf("network state: %w", err)
	}
	if s.networks, s.sandboxes, err = loadAll(s.db); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ensurePredefined(bip); err != nil {
		return nil, err
	}
	if err := bridge.Sysctl(int(s.hostNS.Fd()), "net/ipv4/ip_forward", "1"); err != nil {
		return nil, err
	}
	for _, n := range s.sortedNetworks() {
		if n.Driver == "bridge" {
			if err := s.ensureBridge(n); err != nil {
				return nil, err
			}
		}
	}
	s.recoverSandboxes(ctx)
	s.refreshDNS()
	s.removeLeftovers()
	if err := firewall.Apply(s.nft, s.firewallConfig()); err != nil {
		return nil, err
	}
	return s, nil
}

// openHost opens the host namespace and the netlink and nftables
// connections bound to it.
func (s *Service) openHost() error {
	var err error
	if s.opts.HostNetns != "" {
		s.hostNS, err = os.Open(s.opts.HostNetns)
	} else {
		// A fresh locked thread is in the process's own namespace: threads
		// that entered another one are never reused (see nsenter).
		done := make(chan struct{})
		go func() {
			defer close(done)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			s.hostNS, err = os.Open("/proc/thread-self/ns/net")
		}()
		<-done
	}
	if err != nil {
		return fmt.Errorf("open host network namespace: %w", err)
	}
	if s.host, err = netlink.NewHandleAt(netns.NsHandle(s.hostNS.Fd())); err != nil {
		return fmt.Errorf("netlink: %w", err)
	}
	// A lasting connection: dialling netlink inside the namespace for each
	// transaction would cost ~10 ms per container start.
	if s.nft, err = nftables.New(nftables.WithNetNSFd(int(s.hostNS.Fd())), nftables.AsLasting()); err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	return nil
}

func (s *Service) closeHandles() {
	if s.nft != nil {
		if err := s.nft.CloseLasting(); err != nil {
			s.log.Warn("close nftables connection", "err", err)
		}
	}
	if s.host != nil {
		s.host.Close()
	}
	if s.hostNS != nil {
		s.hostNS.Close()
	}
}

// Close is the daemon's shutdown. Running containers keep their networking
// (live restore): namespaces, veths and rules stay. The embedded DNS
// servers and port reservations end with the daemon; New brings them back.
// The nftables table is removed when no container needs it any more.
func (s *Service) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Set-ups and teardowns under way finish first: the daemon leaves no
	// half-made sandbox and no veth behind.
	_ = s.awaitAllIdle(context.Background())
	var errs []error
	s.stopServing()
	if !slices.ContainsFunc(slices.Collect(maps.Values(s.sandboxes)), func(sb *sandboxRecord) bool { return sb.Mode == "bridge" }) {
		errs = append(errs, firewall.Delete(s.nft, s.opts.TableName))
	}
	s.closeHandles()
	return errors.Join(errs...)
}

// stopServing ends what the daemon process itself provides to sandboxes:
// the DNS servers and the port reservations.
func (s *Service) stopServing() {
	for id := range s.dns {
		s.stopDNS(id)
	}
	for id := range s.reserved {
		s.releasePorts(id)
	}
}

// Restore tears down the sandboxes of containers that are not in live (the
// running containers the container service found after a restart).
func (s *Service) Restore(ctx context.Context, live []string) error {
	s.mu.Lock()
	var dead []string
	for id := range s.sandboxes {
		if !slices.Contains(live, id) {
			dead = append(dead, id)
		}
	}
	s.mu.Unlock()
	var errs []error
	for _, id := range dead {
		errs = append(errs, s.Teardown(ctx, id))
	}
	return errors.Join(errs...)
}

// ensurePredefined creates the bridge, host and none networks on first
// start and moves the default bridge when --bip changed.
func (s *Service) ensurePredefined(bip netip.Prefix) error {
	for _, p := range []struct{ name, driver string }{{BridgeNetwork, "bridge"}, {HostNetwork, "host"}, {NoneNetwork, "null"}} {
		n := s.findByName(p.name)
		if n == nil {
			n = &networkRecord{ID: newID(), Name: p.name, Driver: p.driver, Created: now(), Options: map[string]string{}, Labels: map[string]string{}}
		}
		if p.driver == "bridge" {
			if err := s.configureDefaultBridge(n, bip); err != nil {
				return err
			}
		}
		if err := s.putNetwork(n); err != nil {
			return err
		}
		s.networks[n.ID] = n
	}
	return nil
}

func (s *Service) configureDefaultBridge(n *networkRecord, bip netip.Prefix) error {
	inUse := s.endpointCount(n.ID) > 0
	switch {
	case n.Subnet.IsValid() && inUse:
		if bip.IsValid() && (bip.Masked() != n.Subnet || bip.Addr() != n.Gateway) {
			s.log.Warn("bip changed but containers still use the default bridge; keeping the old subnet", "subnet", n.Subnet, "bip", bip)
		}
		return nil
	case bip.IsValid():
		r, err := ipam.NewRange(bip.Masked(), netip.Prefix{}, bip.Addr())
		if err != nil {
			return fmt.Errorf("bip: %w", err)
		}
		n.Subnet, n.Gateway, n.UserSubnet = r.Subnet, r.Gateway, true
	case !n.Subnet.IsValid():
		taken, err := s.takenSubnets(n.ID, s.opts.BridgeName)
		if err != nil {
			return err
		}
		sub, err := ipam.NextSubnet(s.pools, taken)
		if err != nil {
			return err
		}
		r, _ := ipam.NewRange(sub, netip.Prefix{}, netip.Addr{})
		n.Subnet, n.Gateway = r.Subnet, r.Gateway
	}
	if n.Bridge != "" && n.Bridge != s.opts.BridgeName {
		if err := bridge.Delete(s.host, n.Bridge); err != nil {
			return err
		}
	}
	n.Bridge, n.MTU, n.Masquerade = s.opts.BridgeName, defaultMTU, true
	n.HostBindIP = netip.IPv4Unspecified()
	n.Options = map[string]string{
		optDefaultBridge: "true", optICC: "true", optMasquerade: "true",
		optHostBinding: defaultHostBind, optBridgeName: n.Bridge, optMTU: "1500",
	}
	return nil
}

// takenSubnets are the subnets a new network must not overlap: the other
// networks' and the host's routes (but not default routes, nor the routes of
// the network's own bridge), plus the host's nameservers.
func (s *Service) takenSubnets(selfID, selfBridge string) ([]netip.Prefix, error) {
	var taken []netip.Prefix
	for _, n := range s.networks {
		if n.ID != selfID && n.Subnet.IsValid() {
			taken = append(taken, n.Subnet)
		}
	}
	routes, err := bridge.RouteList(s.host)
	if err != nil {
		return nil, err
	}
	selfIndex := -1
	if l, err := s.host.LinkByName(selfBridge); err == nil {
		selfIndex = l.Attrs().Index
	}
	for _, r := range routes {
		if r.Dst == nil || r.LinkIndex == selfIndex {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP.To4())
		if ok && ones > 0 {
			taken = append(taken, netip.PrefixFrom(a, ones).Masked())
		}
	}
	for _, ns := range hostNameservers(s.opts.ResolvConf) {
		if ns.Is4() {
			taken = append(taken, netip.PrefixFrom(ns, 32))
		}
	}
	return taken, nil
}

func (s *Service) ensureBridge(n *networkRecord) error {
	if _, err := bridge.Ensure(s.host, bridge.Bridge{Name: n.Bridge, Address: netip.PrefixFrom(n.Gateway, n.Subnet.Bits()), MTU: n.MTU}); err != nil {
		return err
	}
	// Lets DNATed connections from 127.0.0.1 leave through the bridge.
	return bridge.Sysctl(int(s.hostNS.Fd()), "net/ipv4/conf/"+n.Bridge+"/route_localnet", "1")
}

// recoverSandboxes brings back what the daemon itself provides to live
// sandboxes (DNS servers, port reservations) and forgets the sandboxes
// whose namespace is gone (a reboot, a crash before Teardown).
func (s *Service) recoverSandboxes(ctx context.Context) {
	for _, sb := range s.sortedSandboxes() {
		alive := true
		switch {
		case sb.owned():
			alive = nsenter.Mounted(sb.NetnsPath)
		case sb.Mode == "container":
			alive = s.sandboxes[sb.JoinContainerID] != nil
		}
		if !alive {
			s.log.Info("removing the network sandbox of a container that is gone", "container", sb.ContainerID)
			if err := s.teardownLocked(sb); err != nil {
				s.log.Warn("network sandbox clean-up", "container", sb.ContainerID, "err", err)
			}
			continue
		}
		if err := s.reservePorts(sb); err != nil {
			s.log.Warn("published ports of a restored container", "container", sb.ContainerID, "err", err)
		}
		if err := s.startDNS(ctx, sb); err != nil {
			s.log.Warn("embedded DNS of a restored container", "container", sb.ContainerID, "err", err)
		}
	}
}

// removeLeftovers deletes veths on berth's bridges and namespace mounts
// that no sandbox owns: what a crash between creating them and recording
// them, or between forgetting them and deleting them, can leave.
func (s *Service) removeLeftovers() {
	known := map[string]bool{}
	netnsFiles := map[string]bool{}
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			known[ep.HostVeth] = true
		}
		if sb.owned() {
			netnsFiles[sb.NetnsPath] = true
		}
	}
	for _, n := range s.networks {
		if n.Driver != "bridge" {
			continue
		}
		ports, err := bridge.Ports(s.host, n.Bridge)
		if err != nil {
			s.log.Warn("list bridge ports", "bridge", n.Bridge, "err", err)
			continue
		}
		for _, p := range ports {
			if !known[p] && strings.HasPrefix(p, "veth") {
				s.log.Info("removing a leftover veth", "veth", p, "bridge", n.Bridge)
				if err := bridge.Detach(s.host, p); err != nil {
					s.log.Warn("remove leftover veth", "veth", p, "err", err)
				}
			}
		}
	}
	dir := filepath.Join(s.opts.ExecRoot, "netns")
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !netnsFiles[p] {
			if err := nsenter.Remove(p); err != nil {
				s.log.Warn("remove leftover netns", "path", p, "err", err)
			}
		}
	}
}

// applyFirewall refills the table for the current state.
func (s *Service) applyFirewall() error {
	return firewall.Update(s.nft, s.firewallConfig())
}

func (s *Service) firewallConfig() firewall.Config {
	cfg := firewall.Config{Table: s.opts.TableName}
	for _, n := range s.sortedNetworks() {
		if n.Driver == "bridge" {
			cfg.Networks = append(cfg.Networks, firewall.Network{Bridge: n.Bridge, Subnet: n.Subnet, Internal: n.Internal, Masquerade: n.Masquerade})
		}
	}
	for _, sb := range s.sortedSandboxes() {
		ep := s.primaryEndpoint(sb)
		if ep == nil {
			continue
		}
		for _, p := range sb.Ports {
			cfg.Ports = append(cfg.Ports, firewall.Port{Proto: p.Proto, HostIP: p.HostIP, HostPort: p.HostPort,
				ContainerIP: ep.IP, ContainerPort: p.ContainerPort, Comment: shortID(sb.ContainerID) + " " + p.key()})
		}
	}
	return cfg
}

func (s *Service) sortedNetworks() []*networkRecord {
	out := slices.Collect(maps.Values(s.networks))
	slices.SortFunc(out, func(a, b *networkRecord) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

func (s *Service) sortedSandboxes() []*sandboxRecord {
	out := slices.Collect(maps.Values(s.sandboxes))
	slices.SortFunc(out, func(a, b *sandboxRecord) int { return strings.Compare(a.ContainerID, b.ContainerID) })
	return out
}

func (s *Service) endpointCount(networkID string) int {
	n := 0
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == networkID {
				n++
			}
		}
	}
	return n
}

func newID() string {
	b := make([]byte, networkIDHexChars/2)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func shortID(id string) string {
	if len(id) > shortIDLen {
		return id[:shortIDLen]
	}
	return id
}
