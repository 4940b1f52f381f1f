package network

import (
	"context"
	"errors"
	"slices"

	"berth/errdefs"
	"berth/network/bridge"

	"github.com/moby/moby/api/types/network"
	"github.com/vishvananda/netlink"
)

// Connect joins a running container to one more network: a new ethN with
// its own address, the embedded DNS if it is the first user network, and a
// line in /etc/hosts.
func (s *Service) Connect(ctx context.Context, containerID, ref string, cfg *network.EndpointSettings) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxes[containerID]
	if sb == nil {
		return errdefs.Errorf(errdefs.ErrNotFound, "container %s has no network sandbox", containerID)
	}
	n, err := s.lookup(ref)
	if err != nil {
		return err
	}
	if err := checkAttachable(sb, n); err != nil {
		return err
	}
	dnsBefore := s.embeddedDNS(sb)
	if err := s.planEndpoint(sb, n, cfg); err != nil {
		return err
	}
	ep := sb.Endpoints[len(sb.Endpoints)-1]
	if err := s.putSandbox(sb); err != nil {
		sb.Endpoints = sb.Endpoints[:len(sb.Endpoints)-1]
		return err
	}
	err = s.withContainerNS(sb.NetnsPath, func(h *netlink.Handle, fd int) error { return s.attach(h, fd, sb, ep) })
	if err == nil {
		err = s.startDNS(ctx, sb)
	}
	if err == nil {
		err = s.applyFirewall()
	}
	if err != nil {
		s.dropEndpoint(sb, ep)
		return err
	}
	s.refreshDNS()
	return s.rewriteFiles(sb, dnsBefore)
}

func checkAttachable(sb *sandboxRecord, n *networkRecord) error {
	switch {
	case sb.Mode == "host" || n.Driver == "host":
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "container cannot be disconnected from host network or connected to host network")
	case sb.Mode == "container":
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "container sharing network namespace with another container or host cannot be connected to any other network")
	case sb.Mode == "none" || n.Driver == "null":
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "container cannot be connected to multiple networks with one of the networks in private (none) mode")
	}
	return nil
}

// dropEndpoint undoes a half-made Connect.
func (s *Service) dropEndpoint(sb *sandboxRecord, ep *endpointRecord) {
	if err := bridge.Detach(s.host, ep.HostVeth); err != nil {
		s.log.Warn("undo connect: veth", "veth", ep.HostVeth, "err", err)
		return
	}
	sb.Endpoints = slices.DeleteFunc(sb.Endpoints, func(e *endpointRecord) bool { return e == ep })
	if err := s.putSandbox(sb); err != nil {
		s.log.Warn("undo connect: record", "container", sb.ContainerID, "err", err)
	}
	if !s.embeddedDNS(sb) {
		s.stopDNS(sb.ContainerID)
	}
}

// Disconnect removes a container from a network. When that network gave
// the default route and published ports, the next network takes over.
func (s *Service) Disconnect(ctx context.Context, containerID, ref string, force bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sb := s.sandboxes[containerID]
	if sb == nil {
		return errdefs.Errorf(errdefs.ErrNotFound, "container %s has no network sandbox", containerID)
	}
	n, err := s.lookup(ref)
	if err != nil {
		return err
	}
	if sb.Mode == "host" || n.Driver == "host" {
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "container cannot be disconnected from host network or connected to host network")
	}
	if sb.Mode == "none" && n.Driver == "null" {
		return errdefs.Errorf(errdefs.ErrPermissionDenied, "container cannot be disconnected from network none")
	}
	i := slices.IndexFunc(sb.Endpoints, func(ep *endpointRecord) bool { return ep.NetworkID == n.ID })
	if i < 0 || sb.Mode == "container" {
		return errdefs.Errorf(errdefs.ErrFailedPrecondition, "container %s is not connected to network %s", shortID(containerID), n.Name)
	}
	ep := sb.Endpoints[i]
	wasGateway, dnsBefore := s.gatewayEndpoint(sb) == ep, s.embeddedDNS(sb)
	if err := bridge.Detach(s.host, ep.HostVeth); err != nil {
		return err
	}
	sb.Endpoints = slices.Delete(sb.Endpoints, i, i+1)
	if err := s.putSandbox(sb); err != nil {
		return err
	}
	var errs []error
	if gw := s.gatewayEndpoint(sb); wasGateway && gw != nil {
		gwNet := s.networks[gw.NetworkID]
		errs = append(errs, s.withContainerNS(sb.NetnsPath, func(h *netlink.Handle, _ int) error {
			return bridge.SetDefaultRoute(h, gw.IfName, gwNet.Gateway)
		}))
	}
	if !s.embeddedDNS(sb) {
		s.stopDNS(containerID)
	}
	s.refreshDNS()
	errs = append(errs, s.applyFirewall(), s.rewriteFiles(sb, dnsBefore))
	return errors.Join(errs...)
}
