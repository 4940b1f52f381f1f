package container

import (
	"context"
	"strings"

	"berth/errdefs"
	"berth/network"

	nettypes "github.com/moby/moby/api/types/network"
)

// Networker is what the container service needs of networking: one
// sandbox (network namespace, addresses, port rules, /etc files) per
// running container. network.Service implements it.
type Networker interface {
	Setup(ctx context.Context, req network.SandboxRequest) (*network.Sandbox, error)
	Teardown(ctx context.Context, containerID string) error
	Sandbox(ctx context.Context, containerID string) (*network.Sandbox, error)
	Connect(ctx context.Context, containerID, ref string, cfg *nettypes.EndpointSettings) error
	Disconnect(ctx context.Context, containerID, ref string, force bool) error
	Restore(ctx context.Context, live []string) error
}

// sandbox sets up the container's networking for a start and returns the
// files to bind and the namespace to join; without a network service the
// container gets loopback only. e.mu is held.
func (s *Service) sandbox(ctx context.Context, rec *Record) (etcFiles, error) {
	if s.opts.Network == nil {
		return s.writeEtcFiles(rec)
	}
	req := network.SandboxRequest{
		ContainerID: rec.ID, Name: strings.TrimPrefix(rec.Name, "/"), NetworkMode: string(rec.HostConfig.NetworkMode),
		Hostname: rec.Config.Hostname, Domainname: rec.Config.Domainname,
		PortBindings: rec.HostConfig.PortBindings, PublishAll: rec.HostConfig.PublishAllPorts,
		ExposedPorts: rec.Config.ExposedPorts, DNS: rec.HostConfig.DNS, DNSSearch: rec.HostConfig.DNSSearch,
		DNSOptions: rec.HostConfig.DNSOptions, ExtraHosts: rec.HostConfig.ExtraHosts, Links: rec.HostConfig.Links,
		Dir: s.containerDir(rec.ID),
	}
	if req.NetworkMode == "" || req.NetworkMode == "default" {
		req.NetworkMode = "bridge" // what Docker's "default" means on Linux
	}
	if rec.Networking != nil && len(rec.Networking.EndpointsConfig) > 0 {
		req.Endpoints = map[string]*nettypes.EndpointSettings{}
		for name, ep := range rec.Networking.EndpointsConfig {
			if name == "default" {
				name = "bridge"
			}
			req.Endpoints[name] = ep
		}
	}
	if other, ok := strings.CutPrefix(req.NetworkMode, "container:"); ok {
		id, err := s.runningID(other)
		if err != nil {
			return etcFiles{}, err
		}
		req.JoinContainerID = id
	}
	sb, err := s.opts.Network.Setup(ctx, req)
	if err != nil {
		return etcFiles{}, err
	}
	rec.Network = sb.Settings
	return etcFiles{hosts: sb.HostsPath, hostname: sb.HostnamePath, resolv: sb.ResolvConfPath, netns: sb.NetnsPath}, nil
}

// runningID resolves the container of --network container:<name>, which
// must be running.
func (s *Service) runningID(name string) (string, error) {
	e, err := s.lookup(name)
	if err != nil {
		return "", err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.rec.State.IsRunning() {
		return "", errdefs.Errorf(errdefs.ErrConflict, "cannot join network of a non running container: %s", e.rec.ID)
	}
	return e.rec.ID, nil
}

// teardown releases the container's networking; idempotent.
func (s *Service) teardown(ctx context.Context, rec *Record) {
	if s.opts.Network == nil {
		return
	}
	if err := s.opts.Network.Teardown(context.WithoutCancel(ctx), rec.ID); err != nil {
		s.log.Warn("network teardown", "container", rec.ID, "err", err)
	}
	rec.Network = nil
}

// NetworkConnect attaches a container to a network: at once when it runs,
// at its next start otherwise (as Docker records it in the config).
func (s *Service) NetworkConnect(ctx context.Context, ref, name string, cfg *nettypes.EndpointSettings) error {
	return s.changeNetworks(ctx, name, func(e *entry) error {
		if e.rec.State.IsRunning() {
			return s.opts.Network.Connect(ctx, e.rec.ID, ref, cfg)
		}
		if e.rec.Networking == nil {
			e.rec.Networking = &nettypes.NetworkingConfig{}
		}
		if e.rec.Networking.EndpointsConfig == nil {
			e.rec.Networking.EndpointsConfig = map[string]*nettypes.EndpointSettings{}
		}
		if cfg == nil {
			cfg = &nettypes.EndpointSettings{}
		}
		e.rec.Networking.EndpointsConfig[ref] = cfg
		return nil
	})
}

// NetworkDisconnect detaches a container from a network.
func (s *Service) NetworkDisconnect(ctx context.Context, ref, name string, force bool) error {
	return s.changeNetworks(ctx, name, func(e *entry) error {
		if e.rec.State.IsRunning() {
			return s.opts.Network.Disconnect(ctx, e.rec.ID, ref, force)
		}
		if e.rec.Networking != nil {
			delete(e.rec.Networking.EndpointsConfig, ref)
		}
		return nil
	})
}

func (s *Service) changeNetworks(ctx context.Context, name string, change func(*entry) error) error {
	if s.opts.Network == nil {
		return errdefs.Errorf(errdefs.ErrFailedPrecondition, "networking is not available")
	}
	e, err := s.lookup(name)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := change(e); err != nil {
		return err
	}
	if e.rec.State.IsRunning() {
		if sb, err := s.opts.Network.Sandbox(ctx, e.rec.ID); err == nil {
			e.rec.Network = sb.Settings
		}
	}
	return s.save(e)
}
