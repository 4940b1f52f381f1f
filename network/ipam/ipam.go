// Package ipam is the address arithmetic of berth's networks: picking a free
// subnet from the address pools, validating a user's subnet, gateway and
// ip-range, and choosing the lowest free address. It is pure: which
// addresses are taken is the caller's to say (and to persist).
package ipam

import (
	"net"
	"net/netip"

	"berth/errdefs"
)

// Pool is one entry of default-address-pools: subnets of prefix length Size
// carved out of Base.
type Pool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools are Docker's local-scope pools: 172.17.0.0/16 through
// 172.31.0.0/16, then /20s out of 192.168.0.0/16.
func DefaultPools() []Pool {
	var pools []Pool
	for b := 17; b <= 31; b++ {
		pools = append(pools, Pool{Base: netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(b), 0, 0}), 16), Size: 16})
	}
	return append(pools, Pool{Base: netip.MustParsePrefix("192.168.0.0/16"), Size: 20})
}

// ParsePool checks one pool as daemon.json gives it.
func ParsePool(base string, size int) (Pool, error) {
	p, err := netip.ParsePrefix(base)
	if err != nil || !p.Addr().Is4() {
		return Pool{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "default-address-pools: invalid base %q", base)
	}
	if size < p.Bits() || size > 30 {
		return Pool{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "default-address-pools: size %d must be between %d and 30 for base %s", size, p.Bits(), base)
	}
	return Pool{Base: p.Masked(), Size: size}, nil
}

// NextSubnet returns the first subnet of the pools, in order, that overlaps
// none of taken (the host's routes and the other networks).
func NextSubnet(pools []Pool, taken []netip.Prefix) (netip.Prefix, error) {
	for _, pool := range pools {
		step := uint32(1) << (32 - pool.Size)
		start := u32(pool.Base.Masked().Addr())
		count := uint64(1) << (pool.Size - pool.Base.Bits())
		for i := uint64(0); i < count; i++ {
			cand := netip.PrefixFrom(addr(start+uint32(i)*step), pool.Size)
			if !overlapsAny(cand, taken) {
				return cand, nil
			}
		}
	}
	return netip.Prefix{}, errdefs.Errorf(errdefs.ErrUnavailable, "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network")
}

func overlapsAny(p netip.Prefix, taken []netip.Prefix) bool {
	for _, t := range taken {
		if p.Overlaps(t) {
			return true
		}
	}
	return false
}

// Range is where a network hands out addresses: its subnet, the gateway
// (the bridge's own address) and optionally a narrower ip-range.
type Range struct {
	Subnet  netip.Prefix
	IPRange netip.Prefix
	Gateway netip.Addr
}

// NewRange validates a network's addressing as `network create` takes it.
// A missing gateway is the subnet's first host address.
func NewRange(subnet, ipRange netip.Prefix, gateway netip.Addr) (Range, error) {
	if !subnet.IsValid() || !subnet.Addr().Is4() {
		return Range{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid subnet %s: only IPv4 subnets are supported", subnet)
	}
	if subnet.Bits() > 30 {
		return Range{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid subnet %s: prefix must be /30 or shorter to leave room for a gateway and a container", subnet)
	}
	subnet = subnet.Masked()
	r := Range{Subnet: subnet, IPRange: ipRange, Gateway: gateway}
	if ipRange.IsValid() {
		r.IPRange = ipRange.Masked()
		if !ipRange.Addr().Is4() || ipRange.Bits() < subnet.Bits() || !subnet.Contains(ipRange.Addr()) {
			return Range{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid ip-range %s: it must be inside subnet %s", ipRange, subnet)
		}
	}
	if !gateway.IsValid() {
		r.Gateway = addr(u32(subnet.Addr()) + 1)
	} else if !r.usable(gateway) {
		return Range{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid gateway %s: it must be a host address of subnet %s", gateway, subnet)
	}
	return r, nil
}

// usable reports whether a is a host address of the subnet: inside it and
// neither its network nor its broadcast address.
func (r Range) usable(a netip.Addr) bool {
	if !a.Is4() || !r.Subnet.Contains(a) {
		return false
	}
	first := u32(r.Subnet.Masked().Addr())
	last := first | (1<<(32-r.Subnet.Bits()) - 1)
	return u32(a) != first && u32(a) != last
}

// Lowest returns the lowest host address of the ip-range (or subnet) that
// is not the gateway and not taken; false when all are taken.
func (r Range) Lowest(taken func(netip.Addr) bool) (netip.Addr, bool) {
	p := r.Subnet
	if r.IPRange.IsValid() {
		p = r.IPRange
	}
	first := u32(p.Masked().Addr())
	n := uint64(1) << (32 - p.Bits())
	for i := uint64(0); i < n; i++ {
		a := addr(first + uint32(i))
		if a != r.Gateway && r.usable(a) && !taken(a) {
			return a, true
		}
	}
	return netip.Addr{}, false
}

// CheckStatic validates an address asked for with --ip: any host address
// of the subnet but the gateway (the ip-range only limits automatic ones,
// as in Docker).
func (r Range) CheckStatic(a netip.Addr) error {
	if !a.Is4() {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid IPv4 address %q", a)
	}
	if !r.usable(a) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "no configured subnet or ip-range contain the IP address %s", a)
	}
	if a == r.Gateway {
		return errdefs.Errorf(errdefs.ErrConflict, "address %s is the gateway of subnet %s", a, r.Subnet)
	}
	return nil
}

// MAC is Docker's address for an IPv4 endpoint: 02:42 then the address
// bytes, so it is unique on the bridge whenever the IP is.
func MAC(a netip.Addr) net.HardwareAddr {
	b := a.As4()
	return net.HardwareAddr{0x02, 0x42, b[0], b[1], b[2], b[3]}
}

func u32(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func addr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
