package network

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"berth/errdefs"
	"berth/network/nsenter"

	"github.com/moby/moby/api/types/network"
	"golang.org/x/sys/unix"
)

// portWant is one requested binding before a host port is chosen: a single
// port, a range, or (lo == 0) any free port.
type portWant struct {
	proto  string
	cport  uint16
	hostIP netip.Addr
	lo, hi uint16
}

// allocatePorts chooses and reserves the host ports of a bridge sandbox:
// each chosen port is bound (not listened on) in the host namespace, which
// keeps other programs off it and reports a port they hold.
func (s *Service) allocatePorts(sb *sandboxRecord, req SandboxRequest) error {
	wants, exposed, err := s.portWants(sb, req)
	if err != nil {
		return err
	}
	sb.Exposed = exposed
	for _, w := range wants {
		if err := s.allocatePort(sb, w); err != nil {
			s.releasePorts(sb.ContainerID)
			sb.Ports = nil
			return err
		}
	}
	return nil
}

// portWants lists the bindings in a stable order, plus the exposed ports
// left unpublished.
func (s *Service) portWants(sb *sandboxRecord, req SandboxRequest) ([]portWant, []string, error) {
	keys := map[string]network.Port{}
	for p := range req.PortBindings {
		keys[p.String()] = p
	}
	for p := range req.ExposedPorts {
		keys[p.String()] = p
	}
	sorted := slices.SortedFunc(maps.Values(keys), func(a, b network.Port) int {
		if a.Num() != b.Num() {
			return int(a.Num()) - int(b.Num())
		}
		return strings.Compare(string(a.Proto()), string(b.Proto()))
	})
	primary := s.primaryEndpoint(sb)
	var wants []portWant
	var exposed []string
	for _, p := range sorted {
		if p.Proto() != network.TCP && p.Proto() != network.UDP {
			return nil, nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid port %s: only tcp and udp ports can be published", p)
		}
		bindings := req.PortBindings[p]
		if len(bindings) == 0 && req.PublishAll {
			bindings = []network.PortBinding{{}}
		}
		if len(bindings) == 0 || primary == nil {
			exposed = append(exposed, p.String())
			continue
		}
		for _, b := range bindings {
			w, err := s.portWant(p, b, s.networks[primary.NetworkID])
			if err != nil {
				return nil, nil, err
			}
			wants = append(wants, w)
		}
	}
	return wants, exposed, nil
}

func (s *Service) portWant(p network.Port, b network.PortBinding, n *networkRecord) (portWant, error) {
	w := portWant{proto: string(p.Proto()), cport: p.Num(), hostIP: b.HostIP}
	if !w.hostIP.IsValid() {
		w.hostIP = n.HostBindIP
		if !w.hostIP.IsValid() {
			w.hostIP = netip.IPv4Unspecified()
		}
	}
	if !w.hostIP.Is4() {
		return w, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid host address %s for port %s: only IPv4 host addresses can be published", w.hostIP, p)
	}
	if b.HostPort == "" || b.HostPort == "0" {
		return w, nil
	}
	pr, err := network.ParsePortRange(b.HostPort)
	if err != nil || pr.Start() == 0 {
		return w, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid host port %q for %s", b.HostPort, p)
	}
	w.lo, w.hi = pr.Start(), pr.End()
	return w, nil
}

// allocatePort reserves one binding: the first free port of its range, or
// any free port.
func (s *Service) allocatePort(sb *sandboxRecord, w portWant) error {
	if w.lo == 0 {
		f, port, err := bindPort(s.hostNS, w.proto, w.hostIP, 0)
		if err != nil {
			return s.bindError(sb, w, 0, err)
		}
		s.keep(sb, w, port, f)
		return nil
	}
	var lastErr error
	for port := uint32(w.lo); port <= uint32(w.hi); port++ {
		if s.portAllocated(sb, w.proto, w.hostIP, uint16(port)) {
			lastErr = errdefs.Errorf(errdefs.ErrConflict, "driver failed programming external connectivity on endpoint %s (%s): Bind for %s:%d failed: port is already allocated",
				sb.Name, sb.Endpoints[0].EndpointID, w.hostIP, port)
			continue
		}
		f, _, err := bindPort(s.hostNS, w.proto, w.hostIP, uint16(port))
		if err != nil {
			lastErr = s.bindError(sb, w, uint16(port), err)
			continue
		}
		s.keep(sb, w, uint16(port), f)
		return nil
	}
	return lastErr
}

func (s *Service) keep(sb *sandboxRecord, w portWant, port uint16, f *os.File) {
	sb.Ports = append(sb.Ports, portRecord{Proto: w.proto, ContainerPort: w.cport, HostIP: w.hostIP, HostPort: port})
	s.reserved[sb.ContainerID] = append(s.reserved[sb.ContainerID], f)
}

func (s *Service) bindError(sb *sandboxRecord, w portWant, port uint16, err error) error {
	kind := errdefs.ErrUnavailable
	if errors.Is(err, unix.EADDRINUSE) {
		kind = errdefs.ErrConflict
	} else if errors.Is(err, unix.EADDRNOTAVAIL) {
		kind = errdefs.ErrInvalidArgument
	}
	ctrIP := ""
	if ep := s.primaryEndpoint(sb); ep != nil {
		ctrIP = ep.IP.String()
	}
	return errdefs.Errorf(kind, "driver failed programming external connectivity on endpoint %s (%s): failed to bind host port for %s:%d:%s:%d/%s: %s",
		sb.Name, sb.Endpoints[0].EndpointID, w.hostIP, port, ctrIP, w.cport, w.proto, unixMessage(err))
}

func unixMessage(err error) string {
	var errno unix.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// portAllocated reports whether another binding (of any sandbox, or an
// earlier one of this one) holds proto/port on ip; 0.0.0.0 clashes with
// every address.
func (s *Service) portAllocated(self *sandboxRecord, proto string, ip netip.Addr, port uint16) bool {
	clash := func(p portRecord) bool {
		return p.Proto == proto && p.HostPort == port && (p.HostIP == ip || p.HostIP.IsUnspecified() || ip.IsUnspecified())
	}
	if slices.ContainsFunc(self.Ports, clash) {
		return true
	}
	for _, sb := range s.sandboxes {
		if sb != self && slices.ContainsFunc(sb.Ports, clash) {
			return true
		}
	}
	return false
}

// reservePorts binds the recorded ports again after a daemon restart.
func (s *Service) reservePorts(sb *sandboxRecord) error {
	var errs []error
	for _, p := range sb.Ports {
		f, _, err := bindPort(s.hostNS, p.Proto, p.HostIP, p.HostPort)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s:%d/%s: %w", p.HostIP, p.HostPort, p.Proto, err))
			continue
		}
		s.reserved[sb.ContainerID] = append(s.reserved[sb.ContainerID], f)
	}
	return errors.Join(errs...)
}

func (s *Service) releasePorts(containerID string) {
	for _, f := range s.reserved[containerID] {
		f.Close()
	}
	delete(s.reserved, containerID)
}

// bindPort binds a socket to ip:port in the host namespace; port 0 lets the
// kernel pick a free one from its ephemeral range. SO_REUSEADDR stays off
// so that nobody else can bind the port while we hold it.
func bindPort(hostNS *os.File, proto string, ip netip.Addr, port uint16) (*os.File, uint16, error) {
	typ := unix.SOCK_STREAM
	if proto == "udp" {
		typ = unix.SOCK_DGRAM
	}
	var fd int
	var chosen uint16
	err := nsenter.DoFd(int(hostNS.Fd()), func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: ip.As4(), Port: int(port)}); err != nil {
			unix.Close(fd)
			return err
		}
		sa, err := unix.Getsockname(fd)
		if err != nil {
			unix.Close(fd)
			return err
		}
		chosen = uint16(sa.(*unix.SockaddrInet4).Port)
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return os.NewFile(uintptr(fd), proto+":"+strconv.Itoa(int(chosen))), chosen, nil
}
