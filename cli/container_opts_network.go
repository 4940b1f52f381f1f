package cli

import (
	"encoding/csv"
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/network"
)

// networkAttachment is one --network: a plain name ("front") or docker's
// advanced form ("name=front,alias=web,ip=172.20.0.5,driver-opt=k=v").
type networkAttachment struct {
	target     string
	aliases    []string
	ip, ip6    string
	mac        string
	linkLocal  []string
	driverOpts map[string]string
	gwPriority int
}

// networkList is the repeatable --network flag.
type networkList struct{ vals *[]networkAttachment }

func (l networkList) Type() string { return "network" }

func (l networkList) String() string {
	names := make([]string, len(*l.vals))
	for i, a := range *l.vals {
		names[i] = a.target
	}
	return strings.Join(names, ",")
}

func (l networkList) Set(v string) error {
	a, err := parseNetworkAttachment(v)
	if err != nil {
		return err
	}
	*l.vals = append(*l.vals, a)
	return nil
}

func parseNetworkAttachment(v string) (networkAttachment, error) {
	if !strings.Contains(v, "=") {
		return networkAttachment{target: v}, nil
	}
	fields, err := csv.NewReader(strings.NewReader(v)).Read()
	if err != nil {
		return networkAttachment{}, err
	}
	var a networkAttachment
	for _, field := range fields {
		key, val, ok := strings.Cut(field, "=")
		if !ok {
			return networkAttachment{}, fmt.Errorf("invalid field %s", field)
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "name":
			a.target = val
		case "alias":
			a.aliases = append(a.aliases, val)
		case "ip":
			a.ip = val
		case "ip6":
			a.ip6 = val
		case "mac-address":
			a.mac = val
		case "link-local-ip":
			a.linkLocal = append(a.linkLocal, val)
		case "driver-opt":
			k, dv, ok := strings.Cut(val, "=")
			if !ok {
				return networkAttachment{}, fmt.Errorf("invalid key value pair format in driver options")
			}
			if a.driverOpts == nil {
				a.driverOpts = map[string]string{}
			}
			a.driverOpts[k] = dv
		case "gw-priority":
			if a.gwPriority, err = strconv.Atoi(val); err != nil {
				return networkAttachment{}, fmt.Errorf("invalid gw-priority: %s", val)
			}
		default:
			return networkAttachment{}, fmt.Errorf("invalid field key %s", key)
		}
	}
	if a.target == "" {
		return networkAttachment{}, fmt.Errorf("network name/id is not specified")
	}
	return a, nil
}

// networkMode is the first network, the container's mode ("" lets the
// daemon choose its default).
func (o *createOptions) networkMode() string {
	if len(o.networks) == 0 {
		return ""
	}
	return o.networks[0].target
}

// networking gives each --network its endpoint. The standalone flags
// (--ip, --network-alias, --mac-address...) belong to the first network;
// like docker, a lone network without options is sent without an
// endpoint, and no --network at all names the "default" endpoint.
func (o *createOptions) networking() (*network.NetworkingConfig, error) {
	list := o.networks
	if len(list) == 0 {
		list = []networkAttachment{{target: "default"}}
	}
	eps := map[string]*network.EndpointSettings{}
	user, builtin := false, false
	for i, a := range list {
		if userDefinedNetwork(a.target) {
			user = true
		} else {
			builtin = true
		}
		if i == 0 {
			var err error
			if a, err = o.withStandaloneFlags(a); err != nil {
				return nil, err
			}
		}
		if _, dup := eps[a.target]; dup {
			return nil, fmt.Errorf("network %q is specified multiple times", a.target)
		}
		ep, err := a.endpoint()
		if err != nil {
			return nil, err
		}
		if i == 0 && len(o.networks) == 1 && reflect.DeepEqual(*ep, network.EndpointSettings{}) {
			continue
		}
		eps[a.target] = ep
	}
	if user && builtin {
		return nil, fmt.Errorf("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return &network.NetworkingConfig{EndpointsConfig: eps}, nil
}

// withStandaloneFlags folds --ip, --ip6, --mac-address, --network-alias
// and --link-local-ip into a, refusing one given both ways.
func (o *createOptions) withStandaloneFlags(a networkAttachment) (networkAttachment, error) {
	both := func(flag, per string) error {
		return fmt.Errorf("conflicting options: cannot specify both --%s and per-network %s", flag, per)
	}
	if len(o.aliases) > 0 {
		if len(a.aliases) > 0 {
			return a, both("network-alias", "alias")
		}
		a.aliases = o.aliases
	}
	if o.ip != "" {
		if a.ip != "" {
			return a, both("ip", "IPv4 address")
		}
		a.ip = o.ip
	}
	if o.ip6 != "" {
		if a.ip6 != "" {
			return a, both("ip6", "IPv6 address")
		}
		a.ip6 = o.ip6
	}
	if o.macAddress != "" {
		if a.mac != "" {
			return a, both("mac-address", "MAC address")
		}
		a.mac = o.macAddress
	}
	if len(o.linkLocalIPs) > 0 {
		if len(a.linkLocal) > 0 {
			return a, both("link-local-ip", "link-local IP addresses")
		}
		a.linkLocal = o.linkLocalIPs
	}
	return a, nil
}

// endpoint turns a into the API's endpoint settings, checking addresses.
func (a networkAttachment) endpoint() (*network.EndpointSettings, error) {
	if len(a.aliases) > 0 && !userDefinedNetwork(a.target) {
		return nil, fmt.Errorf("network-scoped aliases are only supported for user-defined networks")
	}
	if a.ip != "" {
		if addr, err := netip.ParseAddr(a.ip); err != nil || !addr.Is4() {
			return nil, fmt.Errorf("invalid IPv4 address: %s", a.ip)
		}
	}
	if a.ip6 != "" {
		if addr, err := netip.ParseAddr(a.ip6); err != nil || !addr.Is6() {
			return nil, fmt.Errorf("invalid IPv6 address: %s", a.ip6)
		}
	}
	ep := &network.EndpointSettings{Aliases: a.aliases, DriverOpts: a.driverOpts, GwPriority: a.gwPriority}
	var err error
	if ep.IPAMConfig, err = endpointIPAM(a.ip, a.ip6, a.linkLocal); err != nil {
		return nil, err
	}
	if a.mac != "" {
		if ep.MacAddress, err = parseMAC(a.mac); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", a.mac)
		}
	}
	return ep, nil
}

// userDefinedNetwork tells a network the user created from the built-in
// modes.
func userDefinedNetwork(name string) bool {
	switch name {
	case "", "default", "bridge", "host", "none":
		return false
	}
	return !strings.HasPrefix(name, "container:")
}

func parseMAC(s string) (network.HardwareAddr, error) {
	var mac network.HardwareAddr
	err := mac.UnmarshalText([]byte(s))
	return mac, err
}
