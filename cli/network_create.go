package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

type networkCreateOptions struct {
	driver, ipamDriver, scope, configFrom string
	subnets, gateways, ipRanges           []string
	auxAddresses, opts, ipamOpts, labels  []string
	internal, attachable, ingress         bool
	ipv6, ipv4, configOnly                bool
}

func newNetworkCreateCommand(e *env) *cobra.Command {
	var o networkCreateOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts, err := o.toClient(cmd)
			if err != nil {
				return err
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			res, err := c.NetworkCreate(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			for _, w := range res.Warning {
				fmt.Fprintln(e.stderr, "WARNING:", w)
			}
			fmt.Fprintln(e.stdout, res.ID)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.StringArrayVarP(&o.opts, "opt", "o", nil, "Set driver specific options")
	f.StringArrayVar(&o.labels, "label", nil, "Set metadata on a network")
	f.BoolVar(&o.internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&o.attachable, "attachable", false, "Enable manual container attachment")
	f.BoolVar(&o.ingress, "ingress", false, "Create swarm routing-mesh network")
	f.StringVar(&o.scope, "scope", "", "Control the network's scope")
	f.BoolVar(&o.ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&o.ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.BoolVar(&o.configOnly, "config-only", false, "Create a configuration only network")
	f.StringVar(&o.configFrom, "config-from", "", "The network from which to copy the configuration")
	f.StringVar(&o.ipamDriver, "ipam-driver", "default", "IP Address Management Driver")
	f.StringArrayVar(&o.ipamOpts, "ipam-opt", nil, "Set IPAM driver specific options")
	f.StringSliceVar(&o.subnets, "subnet", nil, "Subnet in CIDR format that represents a network segment")
	f.StringSliceVar(&o.ipRanges, "ip-range", nil, "Allocate container ip from a sub-range")
	f.StringSliceVar(&o.gateways, "gateway", nil, "IPv4 or IPv6 Gateway for the master subnet")
	f.StringArrayVar(&o.auxAddresses, "aux-address", nil, "Auxiliary IPv4 or IPv6 addresses used by Network driver")
	return cmd
}

func (o *networkCreateOptions) toClient(cmd *cobra.Command) (client.NetworkCreateOptions, error) {
	ipamConfig, err := ipamConfigs(o.subnets, o.ipRanges, o.gateways, o.auxAddresses)
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	driverOpts, err := networkKeyValues(o.opts, "opt")
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	ipamOpts, err := networkKeyValues(o.ipamOpts, "ipam-opt")
	if err != nil {
		return client.NetworkCreateOptions{}, err
	}
	labels := map[string]string{}
	for _, l := range o.labels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	opts := client.NetworkCreateOptions{
		Driver: o.driver, Scope: o.scope, Internal: o.internal, Attachable: o.attachable, Ingress: o.ingress,
		ConfigOnly: o.configOnly, ConfigFrom: o.configFrom, Options: driverOpts, Labels: labels,
		IPAM: &network.IPAM{Driver: o.ipamDriver, Config: ipamConfig, Options: ipamOpts},
	}
	// Like docker, send the IP family switches only when the user set them.
	if cmd.Flags().Changed("ipv6") {
		opts.EnableIPv6 = &o.ipv6
	}
	if cmd.Flags().Changed("ipv4") {
		opts.EnableIPv4 = &o.ipv4
	}
	return opts, nil
}

// networkKeyValues parses repeated key=value flags.
func networkKeyValues(vals []string, flag string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range vals {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("invalid argument %q for --%s: expected key=value", kv, flag)
		}
		out[k] = v
	}
	return out, nil
}

// ipamConfigs pairs each ip-range, gateway and aux-address with the
// subnet that contains it, with docker's messages when one has none.
func ipamConfigs(subnets, ranges, gateways, aux []string) ([]network.IPAMConfig, error) {
	if len(subnets) < len(ranges) || len(subnets) < len(gateways) {
		return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
	}
	configs := make([]network.IPAMConfig, 0, len(subnets))
	for _, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR address: %s", s)
		}
		for _, c := range configs {
			if c.Subnet.Overlaps(p) {
				return nil, errors.New("multiple overlapping subnet configuration is not supported")
			}
		}
		configs = append(configs, network.IPAMConfig{Subnet: p})
	}
	for _, r := range ranges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid CIDR address: %s", r)
		}
		i := matchSubnet(configs, p.Addr())
		switch {
		case i < 0:
			return nil, fmt.Errorf("no matching subnet for range %s", r)
		case configs[i].IPRange.IsValid():
			return nil, fmt.Errorf("cannot configure multiple ranges (%s, %s) on the same subnet (%s)", r, configs[i].IPRange, configs[i].Subnet)
		}
		configs[i].IPRange = p
	}
	for _, g := range gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("invalid IP address: %s", g)
		}
		i := matchSubnet(configs, a)
		switch {
		case i < 0:
			return nil, fmt.Errorf("no matching subnet for gateway %s", g)
		case configs[i].Gateway.IsValid():
			return nil, fmt.Errorf("cannot configure multiple gateways (%s, %s) for the same subnet (%s)", g, configs[i].Gateway, configs[i].Subnet)
		}
		configs[i].Gateway = a
	}
	return configs, auxAddresses(configs, aux)
}

// auxAddresses files each --aux-address name=ip under its subnet.
func auxAddresses(configs []network.IPAMConfig, aux []string) error {
	for _, kv := range aux {
		name, ip, _ := strings.Cut(kv, "=")
		a, err := netip.ParseAddr(ip)
		if err != nil {
			return fmt.Errorf("invalid IP address: %s", ip)
		}
		i := matchSubnet(configs, a)
		if i < 0 {
			return fmt.Errorf("no matching subnet for aux-address %s", ip)
		}
		if configs[i].AuxAddress == nil {
			configs[i].AuxAddress = map[string]netip.Addr{}
		}
		configs[i].AuxAddress[name] = a
	}
	return nil
}

func matchSubnet(configs []network.IPAMConfig, a netip.Addr) int {
	for i, c := range configs {
		if c.Subnet.Contains(a) {
			return i
		}
	}
	return -1
}

func newNetworkConnectCommand(e *env) *cobra.Command {
	var aliasList, links, linkLocal, driverOpts []string
	var ip, ip6 string
	var gwPriority int
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := &network.EndpointSettings{Aliases: aliasList, Links: links, GwPriority: gwPriority}
			ipam, err := endpointIPAM(ip, ip6, linkLocal)
			if err != nil {
				return err
			}
			cfg.IPAMConfig = ipam
			if len(driverOpts) > 0 {
				if cfg.DriverOpts, err = networkKeyValues(driverOpts, "driver-opt"); err != nil {
					return err
				}
			}
			c, err := e.api()
			if err != nil {
				return err
			}
			_, err = c.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: cfg})
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	f.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., \"2001:db8::33\")")
	f.StringSliceVar(&links, "link", nil, "Add link to another container")
	f.StringSliceVar(&aliasList, "alias", nil, "Add network-scoped alias for the container")
	f.StringSliceVar(&linkLocal, "link-local-ip", nil, "Add a link-local address for the container")
	f.StringSliceVar(&driverOpts, "driver-opt", nil, "driver options for the network")
	f.IntVar(&gwPriority, "gw-priority", 0, "Highest gw-priority provides the default gateway. Accepts positive and negative values.")
	return cmd
}

// endpointIPAM builds the --ip/--ip6/--link-local-ip settings; nil when
// none is given.
func endpointIPAM(ip, ip6 string, linkLocal []string) (*network.EndpointIPAMConfig, error) {
	if ip == "" && ip6 == "" && len(linkLocal) == 0 {
		return nil, nil
	}
	cfg := &network.EndpointIPAMConfig{}
	parse := func(s string) (netip.Addr, error) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return a, fmt.Errorf("invalid IP address: %s", s)
		}
		return a, nil
	}
	var err error
	if ip != "" {
		if cfg.IPv4Address, err = parse(ip); err != nil {
			return nil, err
		}
	}
	if ip6 != "" {
		if cfg.IPv6Address, err = parse(ip6); err != nil {
			return nil, err
		}
	}
	for _, l := range linkLocal {
		a, err := parse(l)
		if err != nil {
			return nil, err
		}
		cfg.LinkLocalIPs = append(cfg.LinkLocalIPs, a)
	}
	return cfg, nil
}

func newNetworkDisconnectCommand(e *env) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := e.api()
			if err != nil {
				return err
			}
			_, err = c.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}
