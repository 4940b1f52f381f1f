package image

import (
	"encoding/json"
	"fmt"
	"time"

	"berth/errdefs"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// The image service's part of berth.db:
//
//	images/
//	  <image id "sha256:…">  -> record (JSON): config digest is the id
//	tags/
//	  <full ref "docker.io/library/busybox:latest" or "name@sha256:…"> -> image id
//	layers/
//	  <chain id>              -> layerRecord (JSON)
//
// A layer's snapshot is keyed by its chain ID in the snapshotter; its blob,
// when kept, is in the content store under layerRecord.Blob. Which images use
// a layer is derived from the image records, never stored twice.
var (
	bucketImages = []byte("images")
	bucketTags   = []byte("tags")
	bucketLayers = []byte("layers")
)

type record struct {
	ID       digest.Digest     `json:"id"`
	Created  time.Time         `json:"created"`
	Parent   digest.Digest     `json:"parent,omitempty"`
	ChainIDs []digest.Digest   `json:"chain_ids"`
	Size     int64             `json:"size"`
	Labels   map[string]string `json:"labels,omitempty"`
	// LastTagTime is when a tag last pointed at this image, for inspect.
	LastTagTime time.Time `json:"last_tag_time,omitempty"`
}

type layerRecord struct {
	ChainID   digest.Digest `json:"chain_id"`
	DiffID    digest.Digest `json:"diff_id"`
	Parent    digest.Digest `json:"parent,omitempty"`
	Size      int64         `json:"size"`
	Blob      digest.Digest `json:"blob,omitempty"`
	BlobSize  int64         `json:"blob_size,omitempty"`
	MediaType string        `json:"media_type,omitempty"`
}

func initBuckets(db *bolt.DB) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketTags, bucketLayers} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("image store: %w", err)
			}
		}
		return nil
	})
}

func getJSON[T any](b *bolt.Bucket, key string, noun string) (T, error) {
	var v T
	raw := b.Get([]byte(key))
	if raw == nil {
		return v, fmt.Errorf("%s %s: %w", noun, key, errdefs.ErrNotFound)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%s %s: corrupt record: %w", noun, key, err)
	}
	return v, nil
}

func putJSON(b *bolt.Bucket, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// state is everything the service reads in one transaction to answer
// list, delete and prune questions consistently.
type state struct {
	images map[digest.Digest]record
	tags   map[string]digest.Digest // ref -> image
	layers map[digest.Digest]layerRecord
}

func (s *state) tagsOf(id digest.Digest) []string {
	var out []string
	for ref, img := range s.tags {
		if img == id {
			out = append(out, ref)
		}
	}
	return out
}

// children returns the images whose parent is id.
func (s *state) children(id digest.Digest) []digest.Digest {
	var out []digest.Digest
	for cid, r := range s.images {
		if r.Parent == id {
			out = append(out, cid)
		}
	}
	return out
}

// layerUsers counts the images that use each chain ID.
func (s *state) layerUsers() map[digest.Digest]int {
	n := map[digest.Digest]int{}
	for _, r := range s.images {
		for _, c := range r.ChainIDs {
			n[c]++
		}
	}
	return n
}

func loadState(tx *bolt.Tx) (*state, error) {
	st := &state{images: map[digest.Digest]record{}, tags: map[string]digest.Digest{}, layers: map[digest.Digest]layerRecord{}}
	err := tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
		var r record
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("image %s: corrupt record: %w", k, err)
		}
		st.images[r.ID] = r
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := tx.Bucket(bucketTags).ForEach(func(k, v []byte) error {
		st.tags[string(k)] = digest.Digest(v)
		return nil
	}); err != nil {
		return nil, err
	}
	err = tx.Bucket(bucketLayers).ForEach(func(k, v []byte) error {
		var l layerRecord
		if err := json.Unmarshal(v, &l); err != nil {
			return fmt.Errorf("layer %s: corrupt record: %w", k, err)
		}
		st.layers[l.ChainID] = l
		return nil
	})
	return st, err
}
