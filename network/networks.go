package network

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"berth/errdefs"
	"berth/network/bridge"
	"berth/network/ipam"

	"github.com/moby/moby/api/types/network"
)

func now() time.Time { return time.Now() }

// lookup finds a network by full ID, exact name, or unique ID prefix, in
// that order, as Docker does.
func (s *Service) lookup(ref string) (*networkRecord, error) {
	if n := s.networks[ref]; n != nil {
		return n, nil
	}
	if n := s.findByName(ref); n != nil {
		return n, nil
	}
	var found []*networkRecord
	for _, n := range s.networks {
		if ref != "" && strings.HasPrefix(n.ID, ref) {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "network %s not found", ref)
	case 1:
		return found[0], nil
	}
	return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "network %s is ambiguous (%d matches found based on ID prefix)", ref, len(found))
}

func (s *Service) findByName(name string) *networkRecord {
	for _, n := range s.networks {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// NetworkCreate creates a user-defined bridge network.
func (s *Service) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	if err := checkCreateRequest(req); err != nil {
		return network.CreateResponse{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.findByName(req.Name) != nil {
		return network.CreateResponse{}, errdefs.Errorf(errdefs.ErrConflict, "network with name %s already exists", req.Name)
	}
	n := &networkRecord{ID: newID(), Name: req.Name, Driver: "bridge", Created: now(), Internal: req.Internal,
		Masquerade: true, MTU: defaultMTU, HostBindIP: netip.IPv4Unspecified(),
		Options: maps.Clone(req.Options), Labels: maps.Clone(req.Labels)}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	n.Bridge = "br-" + n.ID[:shortIDLen]
	if err := s.applyOptions(n); err != nil {
		return network.CreateResponse{}, err
	}
	if err := s.assignSubnet(n, req.IPAM); err != nil {
		return network.CreateResponse{}, err
	}
	if err := s.putNetwork(n); err != nil {
		return network.CreateResponse{}, err
	}
	s.networks[n.ID] = n
	if err := s.ensureBridge(n); err != nil {
		s.undoCreate(n)
		return network.CreateResponse{}, err
	}
	if err := s.applyFirewall(); err != nil {
		s.undoCreate(n)
		return network.CreateResponse{}, err
	}
	return network.CreateResponse{ID: n.ID}, nil
}

func (s *Service) undoCreate(n *networkRecord) {
	delete(s.networks, n.ID)
	if err := bridge.Delete(s.host, n.Bridge); err != nil {
		s.log.Warn("undo network create: bridge", "bridge", n.Bridge, "err", err)
	}
	if err := s.deleteNetwork(n.ID); err != nil {
		s.log.Warn("undo network create: record", "network", n.ID, "err", err)
	}
}

func checkCreateRequest(req network.CreateRequest) error {
	switch {
	case req.Name == "":
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid name: network name must not be empty")
	case !validName.MatchString(req.Name):
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	case req.Driver == "host" || req.Driver == "null":
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "only one instance of %q network is allowed", req.Driver)
	case req.Driver != "" && req.Driver != "bridge":
		return errdefs.Errorf(errdefs.ErrNotFound, "plugin %q not found", req.Driver)
	case req.Scope != "" && req.Scope != "local":
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "scope %q is not supported: berth networks are local", req.Scope)
	case req.EnableIPv6 != nil && *req.EnableIPv6:
		return errdefs.Errorf(errdefs.ErrNotImplemented, "IPv6 networks are not supported by berth")
	case req.EnableIPv4 != nil && !*req.EnableIPv4:
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "IPv4 cannot be disabled on a bridge network")
	case req.ConfigOnly || req.ConfigFrom != nil && req.ConfigFrom.Network != "" || req.Ingress:
		return errdefs.Errorf(errdefs.ErrNotImplemented, "config-only, config-from and ingress networks are swarm features berth does not offer")
	}
	return nil
}

// applyOptions interprets the bridge driver options (-o) berth acts on.
func (s *Service) applyOptions(n *networkRecord) error {
	if name, ok := n.Options[optBridgeName]; ok {
		if name == "" || len(name) > maxInterfaceName || strings.ContainsAny(name, "/ \t") {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid bridge name %q: 1 to %d characters, no spaces or slashes", name, maxInterfaceName)
		}
		n.Bridge = name
	}
	for _, other := range s.networks {
		if other.Bridge == n.Bridge {
			return errdefs.Errorf(errdefs.ErrConflict, "bridge name %s is already used by network %s", n.Bridge, other.Name)
		}
	}
	if _, err := s.host.LinkByName(n.Bridge); err == nil {
		return errdefs.Errorf(errdefs.ErrConflict, "interface %s already exists on the host", n.Bridge)
	}
	boolOpt := func(key string, def bool) (bool, error) {
		v, ok := n.Options[key]
		if !ok {
			return def, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid value %q for option %s: must be true or false", v, key)
		}
		return b, nil
	}
	var err error
	if n.Masquerade, err = boolOpt(optMasquerade, true); err != nil {
		return err
	}
	icc, err := boolOpt(optICC, true)
	if err != nil {
		return err
	}
	if !icc {
		return errdefs.Errorf(errdefs.ErrNotImplemented, "%s=false is not supported by berth", optICC)
	}
	if v, ok := n.Options[optMTU]; ok {
		mtu, err := strconv.Atoi(v)
		if err != nil || mtu < 68 || mtu > 65535 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid value %q for option %s: must be a number between 68 and 65535", v, optMTU)
		}
		n.MTU = mtu
	}
	if v, ok := n.Options[optHostBinding]; ok {
		ip, err := netip.ParseAddr(v)
		if err != nil || !ip.Is4() {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid value %q for option %s: must be an IPv4 address", v, optHostBinding)
		}
		n.HostBindIP = ip
	}
	return nil
}

// assignSubnet takes the user's subnet (checked against the other
// networks) or the next free one from the pools.
func (s *Service) assignSubnet(n *networkRecord, cfg *network.IPAM) error {
	var conf network.IPAMConfig
	if cfg != nil {
		if cfg.Driver != "" && cfg.Driver != "default" {
			return errdefs.Errorf(errdefs.ErrNotFound, "plugin %q not found", cfg.Driver)
		}
		var v4 []network.IPAMConfig
		for _, c := range cfg.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is6() || c.Gateway.Is6() || c.IPRange.IsValid() && c.IPRange.Addr().Is6() {
				return errdefs.Errorf(errdefs.ErrNotImplemented, "IPv6 subnets are not supported by berth")
			}
			v4 = append(v4, c)
		}
		if len(v4) > 1 {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "a bridge network takes one IPv4 subnet, got %d", len(v4))
		}
		if len(v4) == 1 {
			conf = v4[0]
		}
	}
	if len(conf.AuxAddress) > 0 {
		return errdefs.Errorf(errdefs.ErrNotImplemented, "auxiliary addresses (--aux-address) are not supported by berth")
	}
	if !conf.Subnet.IsValid() {
		if conf.Gateway.IsValid() || conf.IPRange.IsValid() {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "every ip-range or gateway must have a corresponding subnet")
		}
		taken, err := s.takenSubnets(n.ID, n.Bridge)
		if err != nil {
			return err
		}
		if conf.Subnet, err = ipam.NextSubnet(s.pools, taken); err != nil {
			return err
		}
	} else {
		n.UserSubnet = true
		for _, other := range s.networks {
			if other.Subnet.IsValid() && other.Subnet.Overlaps(conf.Subnet) {
				return errdefs.Errorf(errdefs.ErrConflict, "invalid pool request: Pool overlaps with other one on this address space")
			}
		}
	}
	r, err := ipam.NewRange(conf.Subnet, conf.IPRange, conf.Gateway)
	if err != nil {
		return err
	}
	n.Subnet, n.IPRange, n.Gateway = r.Subnet, r.IPRange, r.Gateway
	return nil
}

// NetworkRemove deletes a user network that has no containers.
func (s *Service) NetworkRemove(ctx context.Context, ref string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.awaitAllIdle(ctx); err != nil {
		return err
	}
	n, err := s.lookup(ref)
	if err != nil {
		return err
	}
	return s.removeLocked(n)
}

func (s *Service) removeLocked(n *networkRecord) error {
	if n.predefined() {
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "%s is a pre-defined network and cannot be removed", n.Name)
	}
	for _, sb := range s.sortedSandboxes() {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == n.ID {
				return errdefs.Errorf(errdefs.ErrConflict, "error while removing network: network %s has active endpoints (name:%q id:%q)", n.Name, sb.Name, shortID(sb.ContainerID))
			}
		}
	}
	if err := bridge.Delete(s.host, n.Bridge); err != nil {
		return err
	}
	if err := s.deleteNetwork(n.ID); err != nil {
		return err
	}
	delete(s.networks, n.ID)
	s.refreshDNS()
	return s.applyFirewall()
}

// NetworksPrune removes the user networks no container uses and that match
// the filters (until, label, label!).
func (s *Service) NetworksPrune(ctx context.Context, filters map[string][]string) (network.PruneReport, error) {
	match, err := pruneFilter(filters, now())
	if err != nil {
		return network.PruneReport{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.awaitAllIdle(ctx); err != nil {
		return network.PruneReport{}, err
	}
	report := network.PruneReport{NetworksDeleted: []string{}}
	for _, n := range s.sortedNetworks() {
		if n.predefined() || s.endpointCount(n.ID) > 0 || !match(n) {
			continue
		}
		if err := s.removeLocked(n); err != nil {
			return report, err
		}
		report.NetworksDeleted = append(report.NetworksDeleted, n.Name)
	}
	return report, nil
}

// NetworkInspect returns a network with the containers attached to it.
func (s *Service) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, err := s.lookup(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	doc := network.Inspect{Network: s.wire(n), Containers: map[string]network.EndpointResource{}}
	for _, sb := range s.sandboxes {
		for _, ep := range sb.Endpoints {
			if ep.NetworkID != n.ID {
				continue
			}
			res := network.EndpointResource{Name: sb.Name, EndpointID: ep.EndpointID}
			if ep.IP.IsValid() {
				res.MacAddress = network.HardwareAddr(ep.mac())
				res.IPv4Address = netip.PrefixFrom(ep.IP, n.Subnet.Bits())
			}
			doc.Containers[sb.ContainerID] = res
		}
	}
	return doc, nil
}

// NetworkList lists the networks matching the filters, sorted by name.
func (s *Service) NetworkList(ctx context.Context, filters map[string][]string) ([]network.Summary, error) {
	match, err := listFilter(filters)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []network.Summary{}
	for _, n := range s.sortedNetworks() {
		if match(n, s.endpointCount(n.ID) > 0) {
			out = append(out, network.Summary{Network: s.wire(n)})
		}
	}
	slices.SortFunc(out, func(a, b network.Summary) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// wire is a network as the API shows it.
func (s *Service) wire(n *networkRecord) network.Network {
	doc := network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: true,
		IPAM:     network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
		Internal: n.Internal, Options: maps.Clone(n.Options), Labels: maps.Clone(n.Labels),
	}
	if n.Subnet.IsValid() {
		doc.IPAM.Config = append(doc.IPAM.Config, network.IPAMConfig{Subnet: n.Subnet, IPRange: n.IPRange, Gateway: n.Gateway})
	}
	if doc.Options == nil {
		doc.Options = map[string]string{}
	}
	if doc.Labels == nil {
		doc.Labels = map[string]string{}
	}
	return doc
}
