package firewall

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// ResolverAddress is where containers on user networks send DNS queries.
var ResolverAddress = netip.MustParseAddr("127.0.0.11")

// ApplyResolver installs, inside a container's namespace, the table that
// sends queries for 127.0.0.11:53 to the embedded DNS server's real ports.
// The server listens on ephemeral ports so that port 53 stays free for a
// DNS server of the container's own, as with Docker; replies are mapped
// back by conntrack.
//
//	table ip <name> {
//		chain output {
//			type nat hook output priority dstnat
//			ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:<udpPort>
//			ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:<tcpPort>
//		}
//	}
func ApplyResolver(conn *nftables.Conn, table string, udpPort, tcpPort uint16) error {
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: table}
	conn.AddTable(t)
	conn.DelTable(t)
	conn.AddTable(t)
	ch := conn.AddChain(&nftables.Chain{Name: "output", Table: t, Hooknum: nftables.ChainHookOutput, Priority: nftables.ChainPriorityNATDest, Type: nftables.ChainTypeNAT})
	for _, r := range resolverRules(udpPort, tcpPort) {
		conn.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r.Exprs})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("nftables resolver table %s: %w", table, err)
	}
	return nil
}

func resolverRules(udpPort, tcpPort uint16) []Rule {
	rule := func(proto byte, port uint16) Rule {
		return Rule{Exprs: concat(ipDaddr(ResolverAddress), []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: be16(53)},
			&expr.Immediate{Register: 1, Data: ResolverAddress.AsSlice()},
			&expr.Immediate{Register: 2, Data: be16(port)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		})}
	}
	return []Rule{rule(unix.IPPROTO_UDP, udpPort), rule(unix.IPPROTO_TCP, tcpPort)}
}
