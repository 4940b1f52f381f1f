package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"berth/errdefs"

	"github.com/moby/moby/api/types/network"
)

// Networks is an in-memory NetworkBackend with the predefined bridge,
// host and none networks and dockerd's messages for the common errors
// (duplicate names, overlapping subnets, removing a network in use). It
// allocates no addresses beyond what inspect shows.
type Networks struct {
	mu   sync.Mutex
	now  func() time.Time
	nets []*network.Inspect
	seq  int
	// containers maps the names connect and disconnect accept to ids.
	containers map[string]string
}

// NewNetworks returns the predefined networks; containers maps container
// names to ids for connect and disconnect.
func NewNetworks(now func() time.Time, containers map[string]string) *Networks {
	n := &Networks{now: now, containers: containers}
	for _, p := range []struct{ name, driver, subnet string }{{"bridge", "bridge", "172.17.0.0/16"}, {"host", "host", ""}, {"none", "null", ""}} {
		n.add(p.name, p.driver, p.subnet, nil, false)
	}
	return n
}

func (n *Networks) add(name, driver, subnet string, labels map[string]string, internal bool) *network.Inspect {
	sum := sha256.Sum256(fmt.Appendf(nil, "network-%s-%d", name, n.seq))
	n.seq++
	doc := &network.Inspect{Network: network.Network{
		Name: name, ID: hex.EncodeToString(sum[:]), Created: n.now(), Scope: "local", Driver: driver, EnableIPv4: true,
		IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}}, Internal: internal,
		Options: map[string]string{}, Labels: maps.Clone(labels),
	}, Containers: map[string]network.EndpointResource{}}
	if doc.Labels == nil {
		doc.Labels = map[string]string{}
	}
	if subnet != "" {
		p := netip.MustParsePrefix(subnet)
		doc.IPAM.Config = append(doc.IPAM.Config, network.IPAMConfig{Subnet: p, Gateway: p.Addr().Next()})
	}
	n.nets = append(n.nets, doc)
	return doc
}

func (n *Networks) find(ref string) (*network.Inspect, error) {
	for _, d := range n.nets {
		if d.ID == ref || d.Name == ref {
			return d, nil
		}
	}
	for _, d := range n.nets {
		if ref != "" && strings.HasPrefix(d.ID, ref) {
			return d, nil
		}
	}
	return nil, errdefs.Errorf(errdefs.ErrNotFound, "network %s not found", ref)
}

func predefined(name string) bool { return name == "bridge" || name == "host" || name == "none" }

// NetworkCreate creates a bridge network; without a subnet it takes the
// next 172.x.0.0/16.
func (n *Networks) NetworkCreate(_ context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if req.Driver != "" && req.Driver != "bridge" {
		return network.CreateResponse{}, errdefs.Errorf(errdefs.ErrNotFound, "plugin %q not found", req.Driver)
	}
	if _, err := n.find(req.Name); err == nil {
		return network.CreateResponse{}, errdefs.Errorf(errdefs.ErrConflict, "network with name %s already exists", req.Name)
	}
	subnet := ""
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		want := req.IPAM.Config[0].Subnet
		for _, d := range n.nets {
			for _, c := range d.IPAM.Config {
				if c.Subnet.Overlaps(want) {
					return network.CreateResponse{}, errdefs.Errorf(errdefs.ErrConflict, "invalid pool request: Pool overlaps with other one on this address space")
				}
			}
		}
		subnet = want.String()
	} else {
		subnet = fmt.Sprintf("172.%d.0.0/16", 17+n.seq-2)
	}
	doc := n.add(req.Name, "bridge", subnet, req.Labels, req.Internal)
	doc.Options = maps.Clone(req.Options)
	if doc.Options == nil {
		doc.Options = map[string]string{}
	}
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		doc.IPAM.Config = slices.Clone(req.IPAM.Config)
	}
	return network.CreateResponse{ID: doc.ID}, nil
}

// NetworkList supports the name, id, driver, type and label filters.
func (n *Networks) NetworkList(_ context.Context, filters map[string][]string) ([]network.Summary, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k := range filters {
		if !slices.Contains([]string{"name", "id", "driver", "type", "label", "scope", "dangling"}, k) {
			return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", k)
		}
	}
	match := func(key string, f func(string) bool) bool {
		return len(filters[key]) == 0 || slices.ContainsFunc(filters[key], f)
	}
	out := []network.Summary{}
	for _, d := range n.nets {
		if match("name", func(v string) bool { return strings.Contains(d.Name, v) }) &&
			match("id", func(v string) bool { return strings.HasPrefix(d.ID, v) }) &&
			match("driver", func(v string) bool { return d.Driver == v }) &&
			match("type", func(v string) bool { return (v == "builtin") == predefined(d.Name) }) &&
			match("label", func(v string) bool {
				k, val, ok := strings.Cut(v, "=")
				got, has := d.Labels[k]
				return has && (!ok || got == val)
			}) {
			out = append(out, network.Summary{Network: d.Network})
		}
	}
	slices.SortFunc(out, func(a, b network.Summary) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (n *Networks) NetworkInspect(_ context.Context, ref string) (network.Inspect, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, err := n.find(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return *d, nil
}

func (n *Networks) NetworkRemove(_ context.Context, ref string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, err := n.find(ref)
	if err != nil {
		return err
	}
	return n.remove(d)
}

func (n *Networks) remove(d *network.Inspect) error {
	if predefined(d.Name) {
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "%s is a pre-defined network and cannot be removed", d.Name)
	}
	for id, ep := range d.Containers {
		return errdefs.Errorf(errdefs.ErrConflict, "error while removing network: network %s has active endpoints (name:%q id:%q)", d.Name, ep.Name, id[:12])
	}
	n.nets = slices.DeleteFunc(n.nets, func(x *network.Inspect) bool { return x == d })
	return nil
}

// NetworksPrune removes every custom network without containers.
func (n *Networks) NetworksPrune(_ context.Context, _ map[string][]string) (network.PruneReport, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	rep := network.PruneReport{NetworksDeleted: []string{}}
	for _, d := range slices.Clone(n.nets) {
		if !predefined(d.Name) && len(d.Containers) == 0 {
			if err := n.remove(d); err != nil {
				return rep, err
			}
			rep.NetworksDeleted = append(rep.NetworksDeleted, d.Name)
		}
	}
	return rep, nil
}

func (n *Networks) container(name string) (string, error) {
	if id, ok := n.containers[name]; ok {
		return id, nil
	}
	return "", errdefs.Errorf(errdefs.ErrNotFound, "No such container: %s", name)
}

func (n *Networks) NetworkConnect(_ context.Context, ref, ctr string, _ *network.EndpointSettings) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, err := n.find(ref)
	if err != nil {
		return err
	}
	id, err := n.container(ctr)
	if err != nil {
		return err
	}
	if _, ok := d.Containers[id]; ok {
		return errdefs.Errorf(errdefs.ErrConflict, "endpoint with name %s already exists in network %s", ctr, d.Name)
	}
	d.Containers[id] = network.EndpointResource{Name: ctr, EndpointID: id}
	return nil
}

func (n *Networks) NetworkDisconnect(_ context.Context, ref, ctr string, _ bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	d, err := n.find(ref)
	if err != nil {
		return err
	}
	id, err := n.container(ctr)
	if err != nil {
		return err
	}
	if _, ok := d.Containers[id]; !ok {
		return errdefs.Errorf(errdefs.ErrFailedPrecondition, "container %s is not connected to network %s", id[:12], d.Name)
	}
	delete(d.Containers, id)
	return nil
}
