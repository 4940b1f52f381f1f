package network

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"berth/network/bridge"
	"berth/network/nsenter"
)

// release is a sandbox on its way out: no longer a container's (no rules,
// DNS or port reservations), but its veths and namespace may still exist,
// so its addresses stay taken until done is closed.
type release struct {
	sb   *sandboxRecord
	done chan struct{}
}

// Teardown removes a container's sandbox: its rules, port reservations and
// DNS at once, then its veths and namespace, and last its record. A
// container without one is not an error.
//
// Deleting a veth costs the kernel tens of milliseconds (it waits for RCU
// grace periods), so the service lock is not held meanwhile: other
// containers set up and tear down their sandboxes in parallel. Until the
// kernel objects are gone the sandbox's addresses are not handed out
// again, a Setup of the same container waits for it, and a failure leaves
// the sandbox recorded so that the next Teardown (or the next daemon
// start) retries.
func (s *Service) Teardown(ctx context.Context, containerID string) error {
	s.mu.Lock()
	if err := s.awaitIdle(ctx, containerID); err != nil {
		s.mu.Unlock()
		return err
	}
	sb := s.sandboxes[containerID]
	if sb == nil {
		s.mu.Unlock()
		return nil
	}
	r := &release{sb: sb, done: make(chan struct{})}
	s.stopDNS(containerID)
	s.releasePorts(containerID)
	delete(s.sandboxes, containerID)
	s.releasing[containerID] = r
	var ferr error
	if len(sb.Ports) > 0 {
		ferr = s.applyFirewall()
	}
	s.refreshDNS()
	s.mu.Unlock()

	if s.releaseHook != nil {
		s.releaseHook(containerID)
	}
	kerr := s.removeKernelObjects(sb)

	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(r.done)
	delete(s.releasing, containerID)
	if kerr == nil {
		kerr = s.deleteSandbox(containerID)
	}
	if kerr != nil {
		// Still recorded (and its addresses taken) for a retry.
		s.sandboxes[containerID] = sb
		return kerr
	}
	return ferr
}

// removeKernelObjects deletes a sandbox's veths and its namespace; it
// needs no lock, touching only objects no other sandbox names.
func (s *Service) removeKernelObjects(sb *sandboxRecord) error {
	var errs []error
	for _, ep := range sb.Endpoints {
		if ep.HostVeth != "" {
			errs = append(errs, bridge.Detach(s.host, ep.HostVeth))
		}
	}
	if sb.owned() {
		errs = append(errs, nsenter.Remove(sb.NetnsPath))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("tear down network of %s: %w", sb.ContainerID, err)
	}
	return nil
}

// awaitIdle waits, with s.mu held, until the container's sandbox is
// neither being completed (Prepare) nor torn down; s.mu is released while
// waiting.
func (s *Service) awaitIdle(ctx context.Context, containerID string) error {
	for {
		var done chan struct{}
		if r := s.releasing[containerID]; r != nil {
			done = r.done
		} else if p := s.building[containerID]; p != nil {
			done = p.done
		} else {
			return nil
		}
		if err := s.waitUnlocked(ctx, containerID, done); err != nil {
			return err
		}
	}
}

// awaitAllIdle waits, with s.mu held, until no sandbox is being completed
// or torn down (before a network goes, so its bridge outlives every veth
// on it, and at shutdown).
func (s *Service) awaitAllIdle(ctx context.Context) error {
	for len(s.releasing)+len(s.building) > 0 {
		var id string
		for id = range s.releasing {
			break
		}
		for id = range s.building {
			break
		}
		if err := s.awaitIdle(ctx, id); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) waitUnlocked(ctx context.Context, containerID string, done <-chan struct{}) error {
	s.mu.Unlock()
	defer s.mu.Lock()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("network of %s still being set up or torn down: %w", containerID, ctx.Err())
	}
}

// holders are the sandboxes whose addresses are taken: the containers'
// and those still being torn down.
func (s *Service) holders() []*sandboxRecord {
	out := make([]*sandboxRecord, 0, len(s.sandboxes)+len(s.releasing))
	for _, sb := range s.sandboxes {
		out = append(out, sb)
	}
	for _, r := range s.releasing {
		out = append(out, r.sb)
	}
	return slices.Clip(out)
}
