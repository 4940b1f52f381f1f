package ipam

import (
	"errors"
	"net/netip"
	"testing"

	"berth/errdefs"
)

func TestNextSubnet(t *testing.T) {
	t.Parallel()
	p := netip.MustParsePrefix
	tests := []struct {
		name  string
		pools []Pool
		taken []netip.Prefix
		want  string
		err   error
	}{
		{name: "docker default", pools: DefaultPools(), want: "172.17.0.0/16"},
		{name: "route overlaps", pools: DefaultPools(), taken: []netip.Prefix{p("172.17.5.0/24")}, want: "172.18.0.0/16"},
		{name: "supernet route", pools: DefaultPools(), taken: []netip.Prefix{p("172.16.0.0/12")}, want: "192.168.0.0/20"},
		{name: "192.168 partly used", pools: DefaultPools(), taken: []netip.Prefix{p("172.16.0.0/12"), p("192.168.1.0/24")}, want: "192.168.16.0/20"},
		{name: "custom pool", pools: []Pool{{Base: p("10.10.0.0/16"), Size: 24}}, taken: []netip.Prefix{p("10.10.0.0/24"), p("10.10.1.0/24")}, want: "10.10.2.0/24"},
		{name: "exhausted", pools: []Pool{{Base: p("10.10.0.0/23"), Size: 24}}, taken: []netip.Prefix{p("10.10.0.0/23")}, err: errdefs.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := NextSubnet(tt.pools, tt.taken)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || got.String() != tt.want {
				t.Fatalf("NextSubnet = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestParsePool(t *testing.T) {
	t.Parallel()
	tests := []struct {
		base string
		size int
		ok   bool
	}{
		{"10.0.0.0/8", 24, true},
		{"10.0.0.0/16", 8, false},
		{"10.0.0.0/16", 31, false},
		{"fd00::/8", 64, false},
		{"bogus", 24, false},
	}
	for _, tt := range tests {
		_, err := ParsePool(tt.base, tt.size)
		if (err == nil) != tt.ok {
			t.Errorf("ParsePool(%s, %d) err = %v, want ok=%v", tt.base, tt.size, err, tt.ok)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParsePool(%s, %d) err kind = %v", tt.base, tt.size, err)
		}
	}
}

func TestNewRange(t *testing.T) {
	t.Parallel()
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	tests := []struct {
		name    string
		subnet  netip.Prefix
		ipRange netip.Prefix
		gw      netip.Addr
		wantGw  string
		err     bool
	}{
		{name: "default gateway", subnet: p("10.1.0.0/24"), wantGw: "10.1.0.1"},
		{name: "unmasked subnet", subnet: p("10.1.0.7/24"), wantGw: "10.1.0.1"},
		{name: "explicit gateway", subnet: p("10.1.0.0/24"), gw: a("10.1.0.254"), wantGw: "10.1.0.254"},
		{name: "gateway outside", subnet: p("10.1.0.0/24"), gw: a("10.2.0.1"), err: true},
		{name: "gateway is broadcast", subnet: p("10.1.0.0/24"), gw: a("10.1.0.255"), err: true},
		{name: "gateway is network", subnet: p("10.1.0.0/24"), gw: a("10.1.0.0"), err: true},
		{name: "range inside", subnet: p("10.1.0.0/16"), ipRange: p("10.1.5.0/24"), wantGw: "10.1.0.1"},
		{name: "range outside", subnet: p("10.1.0.0/16"), ipRange: p("10.2.5.0/24"), err: true},
		{name: "range wider", subnet: p("10.1.0.0/16"), ipRange: p("10.0.0.0/8"), err: true},
		{name: "ipv6", subnet: p("fd00::/64"), err: true},
		{name: "too small", subnet: p("10.1.0.0/31"), err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, err := NewRange(tt.subnet, tt.ipRange, tt.gw)
			if tt.err {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want invalid argument", err)
				}
				return
			}
			if err != nil || r.Gateway.String() != tt.wantGw {
				t.Fatalf("NewRange = %+v, %v; want gateway %s", r, err, tt.wantGw)
			}
		})
	}
}

func TestLowest(t *testing.T) {
	t.Parallel()
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	r, err := NewRange(p("10.1.0.0/29"), netip.Prefix{}, netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	taken := map[netip.Addr]bool{}
	var got []string
	for {
		ip, ok := r.Lowest(func(x netip.Addr) bool { return taken[x] })
		if !ok {
			break
		}
		taken[ip] = true
		got = append(got, ip.String())
	}
	// .0 is the network, .1 the gateway, .7 the broadcast.
	want := []string{"10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"}
	if len(got) != len(want) {
		t.Fatalf("allocated %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocated %v, want %v", got, want)
		}
	}
	// Freeing .3 makes it the next one again: lowest free first, as Docker.
	delete(taken, a("10.1.0.3"))
	if ip, ok := r.Lowest(func(x netip.Addr) bool { return taken[x] }); !ok || ip != a("10.1.0.3") {
		t.Fatalf("after free: %v %v", ip, ok)
	}

	ranged, err := NewRange(p("10.1.0.0/16"), p("10.1.7.0/24"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	// The range's own network address is a host address of the subnet.
	if ip, _ := ranged.Lowest(func(netip.Addr) bool { return false }); ip != a("10.1.7.0") {
		t.Fatalf("ip-range lowest = %v, want 10.1.7.0", ip)
	}
}

func TestCheckStatic(t *testing.T) {
	t.Parallel()
	r, err := NewRange(netip.MustParsePrefix("10.1.0.0/24"), netip.MustParsePrefix("10.1.0.128/25"), netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip  string
		err error
	}{
		{"10.1.0.5", nil},
		{"10.1.0.200", nil},
		{"10.1.0.1", errdefs.ErrConflict},
		{"10.1.0.255", errdefs.ErrInvalidArgument},
		{"10.2.0.5", errdefs.ErrInvalidArgument},
		{"::1", errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		err := r.CheckStatic(netip.MustParseAddr(tt.ip))
		if (tt.err == nil) != (err == nil) || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Errorf("CheckStatic(%s) = %v, want %v", tt.ip, err, tt.err)
		}
	}
}

func TestMAC(t *testing.T) {
	t.Parallel()
	if got := MAC(netip.MustParseAddr("172.17.0.2")).String(); got != "02:42:ac:11:00:02" {
		t.Fatalf("MAC = %s", got)
	}
}
