package network

import (
	"context"
	"fmt"

	"berth/errdefs"
	"berth/network/nsenter"

	"github.com/vishvananda/netlink"
)

// Prepared is a sandbox whose namespace and /etc files exist, which is all
// an OCI runtime needs to create the container, while its endpoints,
// rules and DNS server are still being made. The container's process must
// not run before Wait has returned nil.
type Prepared struct {
	*Sandbox
	done chan struct{}
	err  error
}

// Wait returns once the sandbox is complete, or why it could not be; a
// sandbox that could not be completed has been removed.
func (p *Prepared) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("network sandbox: %w", ctx.Err())
	}
}

// Prepare is the first half of Setup: it plans and records the sandbox,
// makes its namespace and writes its files, and returns while the veths,
// rules and DNS server are made in the background. Starting a runtime's
// create meanwhile hides the ~10 ms that plumbing costs. A Teardown, or a
// second Prepare, of the same container waits for the background work.
func (s *Service) Prepare(ctx context.Context, req SandboxRequest) (*Prepared, error) {
	if req.ContainerID == "" || req.Dir == "" {
		return nil, fmt.Errorf("network sandbox: container id and directory are required: %w", errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A restart of the same container reuses its namespace path.
	if err := s.awaitIdle(ctx, req.ContainerID); err != nil {
		return nil, err
	}
	if sb := s.sandboxes[req.ContainerID]; sb != nil {
		p := &Prepared{Sandbox: s.view(sb), done: make(chan struct{})}
		close(p.done)
		return p, nil
	}
	sb, err := s.plan(req)
	if err != nil {
		return nil, err
	}
	if err := s.allocatePorts(sb, req); err != nil {
		return nil, err
	}
	if err := s.putSandbox(sb); err != nil {
		s.releasePorts(sb.ContainerID)
		return nil, err
	}
	s.sandboxes[sb.ContainerID] = sb
	if err := s.makeNamespace(sb); err != nil {
		s.undo(sb)
		return nil, err
	}
	p := &Prepared{Sandbox: s.view(sb), done: make(chan struct{})}
	s.building[sb.ContainerID] = p
	go s.complete(context.WithoutCancel(ctx), sb, p)
	return p, nil
}

// complete makes the rest of a prepared sandbox, or removes it.
func (s *Service) complete(ctx context.Context, sb *sandboxRecord, p *Prepared) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p.err = s.plumb(ctx, sb)
	if p.err != nil {
		s.undo(sb)
	} else {
		s.refreshDNS()
	}
	delete(s.building, sb.ContainerID)
	close(p.done)
}

func (s *Service) undo(sb *sandboxRecord) {
	if err := s.teardownLocked(sb); err != nil {
		s.log.Warn("undo network sandbox", "container", sb.ContainerID, "err", err)
	}
}

// makeNamespace creates a planned sandbox's namespace (unless it shares
// another's) and writes its files.
func (s *Service) makeNamespace(sb *sandboxRecord) error {
	switch sb.Mode {
	case "container":
		return nil
	case "host":
		return s.writeFiles(sb, false)
	}
	if err := nsenter.Create(sb.NetnsPath); err != nil {
		return err
	}
	return s.writeFiles(sb, false)
}

// plumb brings loopback up, plugs the endpoints in, applies the rules and
// starts the embedded DNS server of a sandbox whose namespace exists.
func (s *Service) plumb(ctx context.Context, sb *sandboxRecord) error {
	if sb.Mode == "container" || sb.Mode == "host" {
		return nil
	}
	err := s.withContainerNS(sb.NetnsPath, func(h *netlink.Handle, fd int) error {
		lo, err := h.LinkByName("lo")
		if err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("loopback up: %w", err)
		}
		for _, ep := range sb.Endpoints {
			if ep.HostVeth == "" {
				continue
			}
			if err := s.attach(h, fd, sb, ep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Only published ports give a sandbox rules of its own.
	if len(sb.Ports) > 0 {
		if err := s.applyFirewall(); err != nil {
			return err
		}
	}
	return s.startDNS(ctx, sb)
}
