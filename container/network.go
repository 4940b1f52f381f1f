package container

import (
	"context"
	"os"
	"strings"

	"berth/container/spec"
	"berth/errdefs"
	"berth/network"

	"github.com/moby/moby/api/types/container"
	nettypes "github.com/moby/moby/api/types/network"
)

// Networker is what the container service needs of networking: one
// sandbox (network namespace, addresses, port rules, /etc files) per
// running container. network.Service implements it.
type Networker interface {
	Prepare(ctx context.Context, req network.SandboxRequest) (*network.Prepared, error)
	Teardown(ctx context.Context, containerID string) error
	Sandbox(ctx context.Context, containerID string) (*network.Sandbox, error)
	Connect(ctx context.Context, containerID, ref string, cfg *nettypes.EndpointSettings) error
	Disconnect(ctx context.Context, containerID, ref string, force bool) error
	Restore(ctx context.Context, live []string) error
	CheckConfig(ctx context.Context, cfg *container.Config, hc *container.HostConfig, nc *nettypes.NetworkingConfig) error
}

// checkNetworking refuses at create what could never start (see
// network.Service.CheckConfig).
func (s *Service) checkNetworking(ctx context.Context, opts CreateOptions, hc *container.HostConfig) error {
	if s.opts.Network == nil {
		return nil
	}
	return s.opts.Network.CheckConfig(ctx, opts.Config, hc, opts.NetworkingConfig)
}

// sandbox sets up the container's networking for a start and returns the
// files to bind and the namespace to join, which exist, while the rest is
// made in the background; without a network service the container gets
// loopback only. e.mu is held.
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
		id, cfg, err := s.runningNet(other)
		if err != nil {
			return etcFiles{}, err
		}
		req.JoinContainerID = id
		// As Docker: a container in another's namespace has its name too
		// (and its /etc files, which the network service hands back).
		rec.Config.Hostname, rec.Config.Domainname = cfg.Hostname, cfg.Domainname
	}
	sb, err := s.opts.Network.Prepare(ctx, req)
	if err != nil {
		return etcFiles{}, err
	}
	rec.Network = sb.Settings
	return etcFiles{hosts: sb.HostsPath, hostname: sb.HostnamePath, resolv: sb.ResolvConfPath, netns: sb.NetnsPath, ready: sb.Wait}, nil
}

// runningNet resolves the container of --network container:<name>, which
// must be running, to its id and host names.
func (s *Service) runningNet(name string) (string, hostNames, error) {
	e, err := s.lookup(name)
	if err != nil {
		return "", hostNames{}, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.rec.State.IsRunning() {
		return "", hostNames{}, errdefs.Errorf(errdefs.ErrConflict, "cannot join network of a non running container: %s", e.rec.ID)
	}
	return e.rec.ID, hostNames{Hostname: e.rec.Config.Hostname, Domainname: e.rec.Config.Domainname}, nil
}

type hostNames struct{ Hostname, Domainname string }

// defaultHostname is Config.Hostname when the user gave none: the host's
// name with --network host (as Docker sets it at create), else the short
// id. A container joining another's namespace takes that one's at start.
func defaultHostname(id string, hc *container.HostConfig) string {
	if hc.NetworkMode.IsHost() {
		if hn, err := os.Hostname(); err == nil {
			return hn
		}
	}
	return id[:12]
}

// joinNetworkDryRun gives create's dry run of the spec a namespace to join
// for --network container:<x>: the real one is only known at start.
func joinNetworkDryRun(in *spec.Input) {
	if in.HostConfig.NetworkMode.IsContainer() && in.NetNSPath == "" {
		in.NetNSPath = "/proc/self/ns/net"
	}
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

// teardownAsync starts releasing the container's networking and returns
// at once; a later teardown, or a start's Setup, waits for it to end.
func (s *Service) teardownAsync(ctx context.Context, rec *Record) {
	if s.opts.Network == nil {
		return
	}
	id := rec.ID
	rec.Network = nil
	go func() {
		if err := s.opts.Network.Teardown(context.WithoutCancel(ctx), id); err != nil {
			s.log.Warn("network teardown", "container", id, "err", err)
		}
	}()
}

// NetworkConnect attaches a container to a network: at once when it runs,
// at its next start otherwise (as Docker records it in the config).
func (s *Service) NetworkConnect(ctx context.Context, ref, name string, cfg *nettypes.EndpointSettings) error {
	return s.changeNetworks(ctx, name, func(e *entry) error {
		if e.rec.State.IsRunning() {
			return s.opts.Network.Connect(ctx, e.rec.ID, ref, cfg)
		}
		// Checked now, as Docker does, rather than at the next start.
		one := &nettypes.NetworkingConfig{EndpointsConfig: map[string]*nettypes.EndpointSettings{ref: cfg}}
		if err := s.opts.Network.CheckConfig(ctx, &container.Config{}, e.rec.HostConfig, one); err != nil {
			return err
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
