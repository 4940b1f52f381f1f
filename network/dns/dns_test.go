package dns

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// table is a Resolver over fixed names, the seam the network service
// implements for real.
type table struct {
	names     map[string][]netip.Addr
	upstreams []string
}

func (t table) LookupIPv4(name string) ([]netip.Addr, bool) {
	a, ok := t.names[name]
	return a, ok
}

func (t table) Upstreams() []string { return t.upstreams }

func (t table) LookupPTR(addr netip.Addr) (string, bool) {
	for name, addrs := range t.names {
		if slices.Contains(addrs, addr) {
			return name, true
		}
	}
	return "", false
}

// start serves r on loopback and returns its address. UDP and TCP share
// the port, as on a real resolver; a port whose TCP side is taken is
// retried.
func start(t *testing.T, r Resolver) string {
	t.Helper()
	for range 20 {
		udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			udp.Close()
			continue
		}
		var d net.Dialer
		s := NewServer(r, d.DialContext, nil)
		s.Serve(udp, tcp)
		t.Cleanup(func() { s.Close() })
		return udp.LocalAddr().String()
	}
	t.Fatal("no port free for both UDP and TCP")
	return ""
}

func resolver(addr, network string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	upstream := start(t, table{names: map[string][]netip.Addr{"upstream.test": {netip.MustParseAddr("198.51.100.7")}}})
	srv := start(t, table{names: map[string][]netip.Addr{
		"web":   {netip.MustParseAddr("10.5.0.2")},
		"db":    {netip.MustParseAddr("10.5.0.3")},
		"cache": {netip.MustParseAddr("10.5.0.4"), netip.MustParseAddr("10.5.0.5")},
	}, upstreams: []string{"127.0.0.1:1", upstream}})

	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			t.Parallel()
			r := resolver(srv, network)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			tests := []struct {
				name string
				want []string
			}{
				{"web", []string{"10.5.0.2"}},
				{"WEB.", []string{"10.5.0.2"}},
				{"cache", []string{"10.5.0.4", "10.5.0.5"}},
				// Not a container: relayed to the second upstream (the
				// first refuses connections).
				{"upstream.test", []string{"198.51.100.7"}},
			}
			for _, tt := range tests {
				got, err := r.LookupHost(ctx, tt.name)
				if err != nil {
					t.Fatalf("LookupHost(%s): %v", tt.name, err)
				}
				slices.Sort(got)
				if !slices.Equal(got, tt.want) {
					t.Errorf("LookupHost(%s) = %v, want %v", tt.name, got, tt.want)
				}
			}
			names, err := r.LookupAddr(ctx, "10.5.0.3")
			if err != nil || len(names) != 1 || names[0] != "db." {
				t.Errorf("LookupAddr = %v, %v", names, err)
			}
		})
	}
}

func TestUnknownEverywhere(t *testing.T) {
	t.Parallel()
	upstream := start(t, table{})
	srv := start(t, table{upstreams: []string{upstream}})
	r := resolver(srv, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The upstream has no upstream of its own: SERVFAIL travels back.
	_, err := r.LookupHost(ctx, "nothing.test")
	if err == nil {
		t.Fatal("lookup of an unknown name succeeded")
	}
}

func TestAAAAOfKnownName(t *testing.T) {
	t.Parallel()
	srv := start(t, table{names: map[string][]netip.Addr{"web": {netip.MustParseAddr("10.5.0.2")}}})
	q := query(t, "web.", dnsmessage.TypeAAAA)
	conn, err := net.Dial("udp", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(q); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 512)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	var m dnsmessage.Message
	if err := m.Unpack(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 || m.ID != 0x1234 {
		t.Fatalf("AAAA answer: rcode %v, %d answers, id %x", m.RCode, len(m.Answers), m.ID)
	}
}

func TestGarbageIgnored(t *testing.T) {
	t.Parallel()
	srv := start(t, table{names: map[string][]netip.Addr{"web": {netip.MustParseAddr("10.5.0.2")}}})
	conn, err := net.Dial("udp", srv)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Write([]byte{1, 2, 3})
	// The server is still alive and answers the next real query.
	r := resolver(srv, "udp")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if got, err := r.LookupHost(ctx, "web"); err != nil || len(got) != 1 {
		t.Fatalf("after garbage: %v, %v", got, err)
	}
}

func query(t *testing.T, name string, typ dnsmessage.Type) []byte {
	t.Helper()
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 0x1234, RecursionDesired: true})
	b.StartQuestions()
	b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET})
	msg, err := b.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestPTRAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
	}{
		{"2.0.17.172.in-addr.arpa", "172.17.0.2"},
		{"1.0.0.127.in-addr.arpa", "127.0.0.1"},
		{"0.17.172.in-addr.arpa", ""},
		{"x.0.17.172.in-addr.arpa", ""},
		{"example.com", ""},
	}
	for _, tt := range tests {
		a, ok := ptrAddr(tt.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tt.want {
			t.Errorf("ptrAddr(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestCloseCutsForwarding: Close does not wait for an upstream that never
// answers.
func TestCloseCutsForwarding(t *testing.T) {
	t.Parallel()
	silent, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var d net.Dialer
	s := NewServer(table{upstreams: []string{silent.LocalAddr().String()}}, d.DialContext, nil)
	s.Serve(udp, tcp)
	c, err := net.Dial("udp", udp.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write(query(t, "slow.test.", dnsmessage.TypeA))
	buf := make([]byte, 512)
	silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := silent.ReadFrom(buf); err != nil {
		t.Fatalf("query never reached the upstream: %v", err)
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
}
