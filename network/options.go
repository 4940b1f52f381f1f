package network

import (
	"log/slog"
	"net/netip"
	"regexp"

	"berth/errdefs"
	"berth/network/ipam"

	bolt "go.etcd.io/bbolt"
)

// Options configures New.
type Options struct {
	DB *bolt.DB
	// ExecRoot holds the namespaces' bind mounts (<ExecRoot>/netns).
	ExecRoot string
	// Bip is daemon.json's "bip": the default bridge's gateway with its
	// prefix length, e.g. "172.20.0.1/16".
	Bip string
	// DefaultAddressPools replaces Docker's pools (172.17-31.0.0/16, then
	// 192.168.0.0/16 in /20s) for subnets chosen automatically.
	DefaultAddressPools []Pool
	// BridgeName is the default bridge's device, "berth0" by default.
	BridgeName string
	// TableName is the nftables table (family ip), "berth" by default.
	TableName string
	// HostNetns is the path of the namespace used as "the host"; empty
	// means the daemon's own.
	HostNetns string
	// ResolvConf and HostsFile are the host's files containers' copies are
	// based on; /etc/resolv.conf and /etc/hosts by default.
	ResolvConf string
	HostsFile  string
	Logger     *slog.Logger
}

// Pool is one entry of default-address-pools.
type Pool struct {
	Base string
	Size int
}

// Names and defaults of the predefined networks.
const (
	DefaultBridge   = "berth0"
	DefaultTable    = "berth"
	BridgeNetwork   = "bridge"
	HostNetwork     = "host"
	NoneNetwork     = "none"
	dnsAddress      = "127.0.0.11"
	defaultMTU      = 1500
	defaultHostBind = "0.0.0.0"
)

// The driver options of bridge networks that berth acts on; others are kept
// and shown, as Docker does.
const (
	optBridgeName     = "com.docker.network.bridge.name"
	optMasquerade     = "com.docker.network.bridge.enable_ip_masquerade"
	optICC            = "com.docker.network.bridge.enable_icc"
	optHostBinding    = "com.docker.network.bridge.host_binding_ipv4"
	optMTU            = "com.docker.network.driver.mtu"
	optDefaultBridge  = "com.docker.network.bridge.default_bridge"
	maxInterfaceName  = 15
	shortIDLen        = 12
	networkIDHexChars = 64
)

// validName is Docker's rule for network (and container) names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func (o Options) withDefaults() Options {
	if o.BridgeName == "" {
		o.BridgeName = DefaultBridge
	}
	if o.TableName == "" {
		o.TableName = DefaultTable
	}
	if o.ResolvConf == "" {
		o.ResolvConf = "/etc/resolv.conf"
	}
	if o.HostsFile == "" {
		o.HostsFile = "/etc/hosts"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) pools() ([]ipam.Pool, error) {
	if len(o.DefaultAddressPools) == 0 {
		return ipam.DefaultPools(), nil
	}
	var out []ipam.Pool
	for _, p := range o.DefaultAddressPools {
		pool, err := ipam.ParsePool(p.Base, p.Size)
		if err != nil {
			return nil, err
		}
		out = append(out, pool)
	}
	return out, nil
}

// bip parses Options.Bip: a host address with the prefix length.
func (o Options) bip() (netip.Prefix, error) {
	if o.Bip == "" {
		return netip.Prefix{}, nil
	}
	p, err := netip.ParsePrefix(o.Bip)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid bip %q: it must be an IPv4 address with a prefix length, such as 172.20.0.1/16", o.Bip)
	}
	return p, nil
}
