// Package dns is the embedded DNS server of user-defined networks. One
// Server runs per container sandbox, listening on 127.0.0.11:53 (UDP and
// TCP) inside the container's namespace, like Docker's. It answers the
// names the Resolver knows (container names, aliases, short ids, and the
// reverse lookups of their addresses) and relays every other query,
// unchanged, to the upstream resolvers.
package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// Resolver answers names for the one container a Server serves.
type Resolver interface {
	// LookupIPv4 returns the addresses of a container name or alias
	// (lower case, no trailing dot); known is false for names that are
	// not the resolver's, which are then forwarded.
	LookupIPv4(name string) (addrs []netip.Addr, known bool)
	// LookupPTR returns the name of a container address.
	LookupPTR(addr netip.Addr) (name string, known bool)
	// Upstreams are the "ip:port" servers other names are forwarded to,
	// tried in order; none means such names fail (SERVFAIL), as for a
	// container without external access.
	Upstreams() []string
}

// Dialer opens a connection to an upstream resolver. The caller decides
// from which namespace (the container's for ordinary servers, the host's
// for loopback ones such as systemd-resolved's 127.0.0.53).
type Dialer func(ctx context.Context, network, addr string) (net.Conn, error)

// ttl of the answers for container names, which change as containers
// come and go.
const ttl = 60

// upstreamTimeout bounds one forwarded query per upstream.
const upstreamTimeout = 4 * time.Second

// Server answers queries on the listeners given to Serve.
type Server struct {
	resolver Resolver
	dial     Dialer
	log      *slog.Logger

	// ctx ends with Close, cutting short queries still waiting for an
	// upstream so that Close never waits out their timeouts.
	ctx    context.Context
	cancel context.CancelFunc

	mu  sync.Mutex
	udp net.PacketConn
	tcp net.Listener
	wg  sync.WaitGroup
}

// NewServer returns a server for one container.
func NewServer(r Resolver, dial Dialer, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{resolver: r, dial: dial, log: log, ctx: ctx, cancel: cancel}
}

// Serve starts answering on the listeners, which the Server then owns.
func (s *Server) Serve(udp net.PacketConn, tcp net.Listener) {
	s.mu.Lock()
	s.udp, s.tcp = udp, tcp
	s.mu.Unlock()
	s.wg.Add(2)
	go s.serveUDP(udp)
	go s.serveTCP(tcp)
}

// Close stops the listeners and waits for the serving goroutines.
func (s *Server) Close() error {
	s.cancel()
	s.mu.Lock()
	var errs []error
	if s.udp != nil {
		errs = append(errs, s.udp.Close())
	}
	if s.tcp != nil {
		errs = append(errs, s.tcp.Close())
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(errs...)
}

func (s *Server) serveUDP(c net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		q := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if resp := s.answer(q, "udp"); resp != nil {
				if _, err := c.WriteTo(resp, from); err != nil {
					s.log.Debug("dns: write answer", "err", err)
				}
			}
		}()
	}
}

func (s *Server) serveTCP(l net.Listener) {
	defer s.wg.Done()
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer conn.Close()
			s.serveConn(conn)
		}()
	}
}

// serveConn answers length-prefixed queries until the client is done or
// idle for a while (RFC 7766).
func (s *Server) serveConn(conn net.Conn) {
	for {
		if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
			return
		}
		q, err := readTCPMessage(conn)
		if err != nil {
			return
		}
		resp := s.answer(q, "tcp")
		if resp == nil {
			return
		}
		if err := writeTCPMessage(conn, resp); err != nil {
			return
		}
	}
}

func readTCPMessage(r io.Reader) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(r, l[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

func writeTCPMessage(w io.Writer, msg []byte) error {
	out := make([]byte, 2+len(msg))
	binary.BigEndian.PutUint16(out, uint16(len(msg)))
	copy(out[2:], msg)
	_, err := w.Write(out)
	return err
}

// answer builds the response to one query; nil means drop it (garbage).
func (s *Server) answer(query []byte, network string) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(query)
	if err != nil || hdr.Response {
		return nil
	}
	q, err := p.Question()
	if err != nil {
		return reply(hdr, nil, dnsmessage.RCodeFormatError, nil)
	}
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	if q.Class == dnsmessage.ClassINET || q.Class == dnsmessage.ClassANY {
		if resp, ok := s.local(hdr, q, name); ok {
			return resp
		}
	}
	return s.forward(hdr, q, query, network)
}

// local answers from the resolver when the name is a container's.
func (s *Server) local(hdr dnsmessage.Header, q dnsmessage.Question, name string) ([]byte, bool) {
	if q.Type == dnsmessage.TypePTR {
		addr, ok := ptrAddr(name)
		if !ok {
			return nil, false
		}
		target, known := s.resolver.LookupPTR(addr)
		if !known {
			return nil, false
		}
		n, err := dnsmessage.NewName(target + ".")
		if err != nil {
			return nil, false
		}
		return reply(hdr, &q, dnsmessage.RCodeSuccess, func(b *dnsmessage.Builder, rh dnsmessage.ResourceHeader) error {
			return b.PTRResource(rh, dnsmessage.PTRResource{PTR: n})
		}), true
	}
	addrs, known := s.resolver.LookupIPv4(name)
	if !known {
		return nil, false
	}
	if q.Type != dnsmessage.TypeA && q.Type != dnsmessage.TypeALL {
		// The name exists but has no record of this type (AAAA on an
		// IPv4-only network): NOERROR with no answers, so clients do not
		// go on to ask the upstream servers.
		return reply(hdr, &q, dnsmessage.RCodeSuccess, nil), true
	}
	return reply(hdr, &q, dnsmessage.RCodeSuccess, func(b *dnsmessage.Builder, rh dnsmessage.ResourceHeader) error {
		for _, a := range addrs {
			rh.Type = dnsmessage.TypeA
			if err := b.AResource(rh, dnsmessage.AResource{A: a.As4()}); err != nil {
				return err
			}
		}
		return nil
	}), true
}

func reply(hdr dnsmessage.Header, q *dnsmessage.Question, rcode dnsmessage.RCode, answers func(*dnsmessage.Builder, dnsmessage.ResourceHeader) error) []byte {
	rh := dnsmessage.Header{ID: hdr.ID, Response: true, OpCode: hdr.OpCode, RecursionDesired: hdr.RecursionDesired, RecursionAvailable: true, RCode: rcode}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	if q != nil {
		if err := b.StartQuestions(); err != nil {
			return nil
		}
		if err := b.Question(*q); err != nil {
			return nil
		}
		if answers != nil {
			if err := b.StartAnswers(); err != nil {
				return nil
			}
			if err := answers(&b, dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: ttl}); err != nil {
				return nil
			}
		}
	}
	msg, err := b.Finish()
	if err != nil {
		return nil
	}
	return msg
}

// ptrAddr turns "2.0.17.172.in-addr.arpa" into 172.17.0.2.
func ptrAddr(name string) (netip.Addr, bool) {
	rest, ok := strings.CutSuffix(name, ".in-addr.arpa")
	if !ok {
		return netip.Addr{}, false
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(parts[3] + "." + parts[2] + "." + parts[1] + "." + parts[0])
	return a, err == nil && a.Is4()
}

// forward relays the query to the upstreams in turn and returns the first
// answer verbatim; SERVFAIL when none answers.
func (s *Server) forward(hdr dnsmessage.Header, q dnsmessage.Question, query []byte, network string) []byte {
	for _, up := range s.resolver.Upstreams() {
		resp, err := s.exchange(query, network, up)
		if err == nil {
			return resp
		}
		s.log.Debug("dns: upstream failed", "upstream", up, "name", q.Name.String(), "err", err)
	}
	return reply(hdr, &q, dnsmessage.RCodeServerFailure, nil)
}

func (s *Server) exchange(query []byte, network, upstream string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(s.ctx, upstreamTimeout)
	defer cancel()
	conn, err := s.dial(ctx, network, upstream)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(upstreamTimeout)); err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	if network == "tcp" {
		if err := writeTCPMessage(conn, query); err != nil {
			return nil, err
		}
		return readTCPMessage(conn)
	}
	if _, err := conn.Write(query); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return nil, err
		}
		// A reply to someone else's ID is a spoofing attempt or a stale
		// answer: keep waiting for ours.
		if n >= 2 && binary.BigEndian.Uint16(buf) == binary.BigEndian.Uint16(query) {
			return buf[:n], nil
		}
	}
}
