// Package firewall turns berth's networks and published ports into one
// nftables table (family ip) and installs it over netlink; no iptables or
// nft binary is involved.
//
// The table is a pure function of its Config (Rules) and is always written
// whole, in one netlink transaction, so packets see either the old ruleset
// or the new one: Apply replaces the table (a daemon start, which also
// drops a crashed daemon's leftovers), Update flushes and refills it (every
// later change). Its chains:
//
//	prerouting  nat    dstnat  fib daddr type local jump ports
//	output      nat    dstnat  fib daddr type local jump ports
//	ports       (regular)      one DNAT per published port
//	postrouting nat    srcnat  masquerade: outbound traffic of each network,
//	                           127.0.0.0/8 sources reaching a bridge (local
//	                           clients of a published port) and DNATed
//	                           traffic from a bridge's subnet back into it
//	                           (a container reaching itself or a neighbour
//	                           through a published port)
//	forward     filter filter  isolation between bridges and of internal
//	                           networks; DNATed flows (published ports) pass
//
// The hairpin rule matches on the source subnet, not on the input
// interface: with br_netfilter loaded, a DNATed frame may be bridged
// straight back out, and the postrouting hook then has no input device.
//
// Published ports answer on 127.0.0.1 because output DNATs locally generated
// packets, the bridge has route_localnet=1 (set by the bridge package) so
// the kernel routes a 127.0.0.1 source onto it, and postrouting masquerades
// that source to the bridge address.
package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// Network is one bridge network as the firewall sees it.
type Network struct {
	Bridge   string
	Subnet   netip.Prefix
	Internal bool
	// Masquerade hides the containers behind the host's address on
	// outbound traffic (Docker's enable_ip_masquerade, on by default).
	Masquerade bool
}

// Port is one published port: traffic to HostIP:HostPort (any local
// address when HostIP is unspecified or invalid) goes to
// ContainerIP:ContainerPort.
type Port struct {
	Proto         string // "tcp" or "udp"
	HostIP        netip.Addr
	HostPort      uint16
	ContainerIP   netip.Addr
	ContainerPort uint16
	// Comment shows in `nft list`, so an operator can tell whose rule it is.
	Comment string
}

// Config is everything the table holds.
type Config struct {
	Table    string
	Networks []Network
	Ports    []Port
}

// ifnameLen is IFNAMSIZ: nft compares interface names over the whole
// zero-padded buffer.
const ifnameLen = 16

// Apply replaces the table named cfg.Table with cfg's ruleset atomically,
// whatever the table held before (a crashed daemon's rules, an older
// layout).
func Apply(conn *nftables.Conn, cfg Config) error {
	return install(conn, cfg, true)
}

// Update refills a table that Apply installed, also atomically. It flushes
// the rules but keeps the table and chains, which costs the kernel far less
// than dropping the table (no wait for in-flight packets to leave the
// old base chains): about 1 ms instead of over 10.
func Update(conn *nftables.Conn, cfg Config) error {
	return install(conn, cfg, false)
}

func install(conn *nftables.Conn, cfg Config, replace bool) error {
	if cfg.Table == "" {
		return errors.New("nftables: empty table name")
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: cfg.Table}
	conn.AddTable(t)
	if replace {
		conn.DelTable(t)
		conn.AddTable(t)
	}
	chains := Rules(cfg)
	added := make([]*nftables.Chain, len(chains))
	for i, c := range chains {
		added[i] = conn.AddChain(&nftables.Chain{Name: c.Name, Table: t, Hooknum: c.Hook, Priority: c.Priority, Type: c.Type, Policy: c.Policy})
	}
	if !replace {
		conn.FlushTable(t)
	}
	for i, c := range chains {
		for _, r := range c.Rules {
			conn.AddRule(&nftables.Rule{Table: t, Chain: added[i], Exprs: r.Exprs, UserData: r.UserData})
		}
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables table %s: %w", cfg.Table, err)
	}
	return nil
}

// Delete removes the table; a missing table is not an error.
func Delete(conn *nftables.Conn, table string) error {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}
	// Adding first makes the delete valid whether or not the table exists.
	conn.AddTable(t)
	conn.DelTable(t)
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("delete nftables table %s: %w", table, err)
	}
	return nil
}

// Exists reports whether the table is installed.
func Exists(conn *nftables.Conn, table string) (bool, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("list nftables tables: %w", err)
	}
	for _, t := range tables {
		if t.Name == table {
			return true, nil
		}
	}
	return false, nil
}

// Chain is one chain of the generated table.
type Chain struct {
	Name     string
	Hook     *nftables.ChainHook
	Priority *nftables.ChainPriority
	Type     nftables.ChainType
	Policy   *nftables.ChainPolicy
	Rules    []Rule
}

// Rule is one rule's expressions and its comment (as nft's userdata).
type Rule struct {
	Exprs    []expr.Any
	UserData []byte
}

// Rules is the ruleset for cfg, as data: the order of chains and rules is
// the order of installation.
func Rules(cfg Config) []Chain {
	accept := nftables.ChainPolicyAccept
	localJump := []Rule{{Exprs: concat(fibDaddrLocal(), verdict(expr.VerdictJump, "ports"))}}
	return []Chain{
		{Name: "ports", Rules: portRules(cfg.Ports)},
		{Name: "prerouting", Hook: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityNATDest, Type: nftables.ChainTypeNAT, Rules: localJump},
		{Name: "output", Hook: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Type: nftables.ChainTypeNAT, Rules: localJump},
		{Name: "postrouting", Hook: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Type: nftables.ChainTypeNAT, Rules: natRules(cfg.Networks)},
		{Name: "forward", Hook: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Type: nftables.ChainTypeFilter, Policy: &accept, Rules: forwardRules(cfg.Networks)},
	}
}

func portRules(ports []Port) []Rule {
	var rules []Rule
	for _, p := range ports {
		var e []expr.Any
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			e = append(e, ipDaddr(p.HostIP)...)
		}
		proto := byte(unix.IPPROTO_TCP)
		if p.Proto == "udp" {
			proto = unix.IPPROTO_UDP
		}
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(p.HostPort)},
			&expr.Immediate{Register: 1, Data: p.ContainerIP.AsSlice()},
			&expr.Immediate{Register: 2, Data: be16(p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		r := Rule{Exprs: e}
		if p.Comment != "" {
			r.UserData = userdata.AppendString(nil, userdata.TypeComment, p.Comment)
		}
		rules = append(rules, r)
	}
	return rules
}

func natRules(nets []Network) []Rule {
	var rules []Rule
	for _, n := range nets {
		if n.Masquerade && !n.Internal {
			rules = append(rules, Rule{Exprs: concat(ipSaddrIn(n.Subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, n.Bridge), masq())})
		}
		rules = append(rules,
			Rule{Exprs: concat(ipSaddrIn(netip.MustParsePrefix("127.0.0.0/8")), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), masq())},
			Rule{Exprs: concat(ipSaddrIn(n.Subnet), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, n.Bridge), ctStatusDNAT(), masq())},
		)
	}
	return rules
}

func forwardRules(nets []Network) []Rule {
	rules := []Rule{{Exprs: concat(ctStatusDNAT(), verdict(expr.VerdictAccept, ""))}}
	for _, a := range nets {
		if a.Internal {
			rules = append(rules,
				Rule{Exprs: concat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, a.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpNeq, a.Bridge), verdict(expr.VerdictDrop, ""))},
				Rule{Exprs: concat(ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, a.Bridge), ifname(expr.MetaKeyIIFNAME, expr.CmpOpNeq, a.Bridge), verdict(expr.VerdictDrop, ""))},
			)
			continue
		}
		for _, b := range nets {
			if a.Bridge == b.Bridge || b.Internal {
				continue
			}
			rules = append(rules, Rule{Exprs: concat(ifname(expr.MetaKeyIIFNAME, expr.CmpOpEq, a.Bridge), ifname(expr.MetaKeyOIFNAME, expr.CmpOpEq, b.Bridge), verdict(expr.VerdictDrop, ""))})
		}
	}
	return rules
}

func concat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func fibDaddrLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ne32(unix.RTN_LOCAL)},
	}
}

func ipDaddr(a netip.Addr) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 16, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a.AsSlice()},
	}
}

func ipSaddrIn(p netip.Prefix) []expr.Any {
	var mask [4]byte
	for i := 0; i < p.Bits(); i++ {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask[:], Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p.Masked().Addr().AsSlice()},
	}
}

func ifname(key expr.MetaKey, op expr.CmpOp, name string) []expr.Any {
	b := make([]byte, ifnameLen)
	copy(b, name)
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: b},
	}
}

// ctStatusDNAT matches connections whose destination was rewritten: a
// published port.
func ctStatusDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ne32(0x20), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func masq() []expr.Any { return []expr.Any{&expr.Masq{}} }

func verdict(kind expr.VerdictKind, chain string) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind, Chain: chain}}
}

func be16(v uint16) []byte { return []byte{byte(v >> 8), byte(v)} }

// ne32 is a 32-bit value in host byte order, as the kernel keeps fib
// results and conntrack status in registers.
func ne32(v uint32) []byte {
	b := make([]byte, 4)
	binary.NativeEndian.PutUint32(b, v)
	return b
}
