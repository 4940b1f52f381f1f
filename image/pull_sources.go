package image

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// Layers are kept uncompressed; what they looked like in registries is
// remembered apart, so a push can find a blob it need not compress and
// upload again (it exists in the target repository, or can be mounted
// from another repository of the same registry):
//
//	distribution/
//	  <diff id>/
//	    <blob digest> -> blobSource (JSON)
//
// Pulls record the blob they downloaded, pushes the blob they produced.
var bucketDistribution = []byte("distribution")

// maxSourceRepos bounds the repositories remembered per blob; the most
// recent ones are kept.
const maxSourceRepos = 16

type blobSource struct {
	MediaType string        `json:"media_type"`
	Digest    digest.Digest `json:"digest"`
	Size      int64         `json:"size"`
	// Repos are full repository names ("127.0.0.1:5000/team/app") known
	// to hold the blob, oldest first.
	Repos []string `json:"repos"`
}

// addBlobSource records that ref's repository holds desc, the compressed
// form of the layer diffID.
func addBlobSource(tx *bolt.Tx, diffID digest.Digest, desc ocispec.Descriptor, ref reference.Named) error {
	if desc.Digest == diffID {
		return nil // uncompressed: nothing a push could reuse as gzip
	}
	root, err := tx.CreateBucketIfNotExists(bucketDistribution)
	if err != nil {
		return fmt.Errorf("distribution metadata: %w", err)
	}
	b, err := root.CreateBucketIfNotExists([]byte(diffID.String()))
	if err != nil {
		return fmt.Errorf("distribution metadata: %w", err)
	}
	src := blobSource{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}
	if raw := b.Get([]byte(desc.Digest.String())); raw != nil {
		if err := json.Unmarshal(raw, &src); err != nil {
			return fmt.Errorf("distribution metadata %s: corrupt record: %w", desc.Digest, err)
		}
	}
	repo := ref.Name()
	src.Repos = append(slices.DeleteFunc(src.Repos, func(r string) bool { return r == repo }), repo)
	if len(src.Repos) > maxSourceRepos {
		src.Repos = src.Repos[len(src.Repos)-maxSourceRepos:]
	}
	return putJSON(b, desc.Digest.String(), src)
}

// blobSources returns what is known of the compressed forms of diffID.
func (s *Service) blobSources(diffID digest.Digest) ([]blobSource, error) {
	var out []blobSource
	err := s.db.View(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketDistribution)
		if root == nil {
			return nil
		}
		b := root.Bucket([]byte(diffID.String()))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var src blobSource
			if err := json.Unmarshal(v, &src); err != nil {
				return fmt.Errorf("distribution metadata %s: corrupt record: %w", k, err)
			}
			out = append(out, src)
			return nil
		})
	})
	return out, err
}
