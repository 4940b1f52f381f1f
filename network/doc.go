// Package network gives containers their networking, as Docker's bridge
// driver does: a default bridge network ("bridge", device berth0), user
// networks with their own bridges, IPAM, veth pairs into per-container
// namespaces, published ports and masquerading through one nftables table
// (package firewall), and an embedded DNS server on user networks
// (package dns).
//
// # State
//
// Networks and sandboxes are kept in berth.db; a network's allocated
// addresses are exactly the addresses of the endpoints recorded in the
// sandboxes bucket, so an address can never be handed out twice and is
// free again once its sandbox is gone, across daemon restarts:
//
//	network/                    (bucket)
//	  networks/<network id>     JSON networkRecord
//	  sandboxes/<container id>  JSON sandboxRecord (endpoints, their
//	                            addresses, veths, published ports)
//
// A sandbox is written before any kernel object is made for it and deleted
// after the last one is gone, so after a crash the record says what may be
// left to clean up.
//
// Two steps of a container's start and exit happen off the service lock
// and off the caller's path, because the kernel makes them slow: Prepare
// returns once the namespace and files exist and makes the veths, rules
// and DNS server in the background (a runtime creates the container
// meanwhile; Prepared.Wait comes before its process runs), and Teardown
// deletes the veths and namespace (~20 ms of RCU waits) with the lock
// released. Until that deletion is done the sandbox's addresses stay
// taken; a Setup of the same container, a network removal and Close wait
// for both.
//
// # Files
//
//	<ExecRoot>/netns/<12 hex>   bind mount of the container's network
//	                            namespace (SandboxKey)
//	<Dir>/hosts, hostname, resolv.conf
//	                            per container; written atomically before the
//	                            container starts, rewritten in place (they
//	                            are bind-mounted files) on connect and
//	                            disconnect
//
// # Published ports
//
// Ports are DNAT rules, not proxies: traffic keeps flowing while the daemon
// is down (live restore). Locally generated connections, including to
// 127.0.0.1, are DNATed in the output hook; see package firewall. The
// daemon also binds (without listening) every published host port, so no
// other program can take it and a port held by another program is
// reported at once.
//
// # Kernel objects and the host namespace
//
// Options.HostNetns names the namespace the service treats as the host;
// the daemon leaves it empty (its own namespace) and tests point it at a
// throwaway one, so they never touch the machine's interfaces or rules.
package network
