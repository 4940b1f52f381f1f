package network

import (
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"time"

	"berth/network/ipam"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketRoot      = []byte("network")
	bucketNetworks  = []byte("networks")
	bucketSandboxes = []byte("sandboxes")
)

// networkRecord is one network as persisted.
type networkRecord struct {
	ID      string
	Name    string
	Driver  string // "bridge", "host" or "null"
	Created time.Time
	Subnet  netip.Prefix `json:",omitzero"`
	IPRange netip.Prefix `json:",omitzero"`
	Gateway netip.Addr   `json:",omitzero"`
	// UserSubnet is set when the subnet was given (--subnet, --bip):
	// only then may containers ask for a fixed address, as in Docker.
	UserSubnet bool
	Internal   bool
	Bridge     string
	MTU        int
	Masquerade bool
	HostBindIP netip.Addr `json:",omitzero"`
	Options    map[string]string
	Labels     map[string]string
}

// isDefault reports whether this is the default bridge network, where
// aliases, fixed addresses and name resolution are not offered (Docker's
// legacy "bridge").
func (n *networkRecord) isDefault() bool { return n.Name == BridgeNetwork && n.Driver == "bridge" }

func (n *networkRecord) predefined() bool {
	return n.Name == BridgeNetwork || n.Name == HostNetwork || n.Name == NoneNetwork
}

// sandboxRecord is one container's networking as persisted.
type sandboxRecord struct {
	ContainerID string
	Name        string
	// Mode is "bridge" (endpoints on bridge networks), "none", "host" or
	// "container" (sharing JoinContainerID's namespace).
	Mode            string
	SandboxID       string
	NetnsPath       string
	JoinContainerID string `json:",omitempty"`
	Hostname        string
	Domainname      string `json:",omitempty"`
	HostsPath       string
	HostnamePath    string
	ResolvConfPath  string
	ExtraHosts      []string `json:",omitempty"`
	// Upstreams are the servers the embedded DNS forwards to ("ip:53").
	Upstreams []string `json:",omitempty"`
	// DNS, DNSSearch and DNSOptions are --dns, --dns-search and
	// --dns-option: resolv.conf is rewritten from them when a connect or
	// disconnect turns the embedded DNS on or off.
	DNS        []netip.Addr `json:",omitempty"`
	DNSSearch  []string     `json:",omitempty"`
	DNSOptions []string     `json:",omitempty"`
	Endpoints  []*endpointRecord
	Ports      []portRecord `json:",omitempty"`
	// Exposed are ports exposed but not published: they show in inspect
	// with no binding.
	Exposed []string `json:",omitempty"`
}

// owned reports whether the sandbox made its namespace (and so removes it).
func (r *sandboxRecord) owned() bool { return r.Mode == "bridge" || r.Mode == "none" }

type endpointRecord struct {
	NetworkID  string
	EndpointID string
	IP         netip.Addr
	HostVeth   string
	IfName     string
	Aliases    []string `json:",omitempty"`
	// Links are "name:alias" pairs (see SandboxRequest.Links).
	Links []string `json:",omitempty"`
	// StaticIP is the address asked for with --ip, if any.
	StaticIP netip.Addr `json:",omitzero"`
	// MAC is the address asked for with --mac-address; empty means
	// Docker's 02:42 + the IPv4 address.
	MAC string `json:",omitempty"`
}

// mac is the endpoint's hardware address.
func (e *endpointRecord) mac() net.HardwareAddr {
	if hw, err := net.ParseMAC(e.MAC); err == nil {
		return hw
	}
	return ipam.MAC(e.IP)
}

type portRecord struct {
	Proto         string
	ContainerPort uint16
	HostIP        netip.Addr
	HostPort      uint16
}

func (p portRecord) key() string { return fmt.Sprintf("%d/%s", p.ContainerPort, p.Proto) }

func initBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		root, err := tx.CreateBucketIfNotExists(bucketRoot)
		if err != nil {
			return err
		}
		for _, b := range [][]byte{bucketNetworks, bucketSandboxes} {
			if _, err := root.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

func loadAll(db *bolt.DB) (map[string]*networkRecord, map[string]*sandboxRecord, error) {
	nets := map[string]*networkRecord{}
	sbs := map[string]*sandboxRecord{}
	err := db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketRoot)
		if err := root.Bucket(bucketNetworks).ForEach(func(k, v []byte) error {
			var n networkRecord
			if err := json.Unmarshal(v, &n); err != nil {
				return fmt.Errorf("network record %s: %w", k, err)
			}
			nets[n.ID] = &n
			return nil
		}); err != nil {
			return err
		}
		return root.Bucket(bucketSandboxes).ForEach(func(k, v []byte) error {
			var sb sandboxRecord
			if err := json.Unmarshal(v, &sb); err != nil {
				return fmt.Errorf("sandbox record %s: %w", k, err)
			}
			sbs[sb.ContainerID] = &sb
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("load network state: %w", err)
	}
	return nets, sbs, nil
}

func put(db *bolt.DB, bucket []byte, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucket).Put([]byte(key), data)
	})
}

func del(db *bolt.DB, bucket []byte, key string) error {
	return db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketRoot).Bucket(bucket).Delete([]byte(key))
	})
}

func (s *Service) putNetwork(n *networkRecord) error {
	if err := put(s.db, bucketNetworks, n.ID, n); err != nil {
		return fmt.Errorf("save network %s: %w", n.Name, err)
	}
	return nil
}

func (s *Service) deleteNetwork(id string) error {
	if err := del(s.db, bucketNetworks, id); err != nil {
		return fmt.Errorf("delete network %s: %w", id, err)
	}
	return nil
}

func (s *Service) putSandbox(sb *sandboxRecord) error {
	if err := put(s.db, bucketSandboxes, sb.ContainerID, sb); err != nil {
		return fmt.Errorf("save sandbox of %s: %w", sb.ContainerID, err)
	}
	return nil
}

func (s *Service) deleteSandbox(id string) error {
	if err := del(s.db, bucketSandboxes, id); err != nil {
		return fmt.Errorf("delete sandbox of %s: %w", id, err)
	}
	return nil
}
