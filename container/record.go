package container

import (
	"encoding/json"
	"fmt"
	"time"

	"berth/volume"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"
)

// The container service's part of berth.db:
//
//	containers/
//	  <64-hex id> -> Record (JSON)
//
// Files of a container live in <data-root>/containers/<id>/: the OCI bundle
// (config.json, rootfs mount point), hostname, hosts, resolv.conf and the
// json-file log. The shim's state (socket, exit status) is under
// <exec-root>/shims/<id>/.
var bucketContainers = []byte("containers")

// Record is everything persisted about a container.
type Record struct {
	ID         string                    `json:"id"`
	Name       string                    `json:"name"` // with the leading "/"
	Created    time.Time                 `json:"created"`
	Image      string                    `json:"image"`  // image ID
	Config     *container.Config         `json:"config"` // merged with the image's
	HostConfig *container.HostConfig     `json:"host_config"`
	Networking *network.NetworkingConfig `json:"networking,omitempty"`
	Runtime    string                    `json:"runtime"`
	Driver     string                    `json:"driver"`
	// Snapshot is the key of the writable layer; Parent the image's top
	// layer it was prepared on.
	Snapshot string `json:"snapshot"`
	Parent   string `json:"parent"`
	State    State  `json:"state"`
	// Network is what the network service reported at the last start.
	Network *container.NetworkSettings `json:"network,omitempty"`
	// Mounts are the resolved -v, --mount, --volumes-from and image
	// VOLUME mounts, fixed at create (see mounts.go).
	Mounts []volume.MountPoint `json:"mounts,omitempty"`
}

func putRecord(tx *bolt.Tx, r *Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketContainers).Put([]byte(r.ID), raw)
}

func loadRecords(db *bolt.DB) ([]*Record, error) {
	var out []*Record
	err := db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("container %s: corrupt record: %w", k, err)
			}
			out = append(out, &r)
			return nil
		})
	})
	return out, err
}
