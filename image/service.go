// Package image keeps the engine's images: their configs and layers, the
// tags that name them, and the operations of `images`, `inspect`,
// `history`, `tag`, `rmi`, `image prune` and `import`.
//
// An image is a config blob in the content store (its digest is the image
// ID) plus one committed snapshot per layer, keyed by chain ID. The records
// that tie them together are in berth.db (see records.go).
package image

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"berth/content"
	"berth/errdefs"
	"berth/remote"
	"berth/snapshot"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// ContainerUsage tells which containers use an image, so that `rmi` can
// refuse to delete it. The container service implements it.
type ContainerUsage interface {
	// ImageUsers returns the IDs of containers created from the image, and
	// whether any of them is running.
	ImageUsers(ctx context.Context, imageID string) (ids []string, running bool)
}

// Options configures a Service.
type Options struct {
	DB          *bolt.DB
	Content     *content.Store
	Snapshotter snapshot.Snapshotter
	Driver      string // the snapshotter's name, for inspect's GraphDriver
	Logger      *slog.Logger
	// Remote is the registry client for pull and push; nil disables them.
	Remote *remote.Client
	// MaxDownloads and MaxUploads bound the layers transferred at once by
	// all pulls and by each push (daemon.json max-concurrent-downloads and
	// max-concurrent-uploads); 0 means 3 and 5, as in Docker.
	MaxDownloads int
	MaxUploads   int
}

// Service is the image store.
type Service struct {
	db      *bolt.DB
	content *content.Store
	sn      snapshot.Snapshotter
	driver  string
	log     *slog.Logger

	// layerMu orders layer creation against layer removal: creators hold it
	// shared while they commit a snapshot and record it, removers hold it
	// exclusively while they drop unreferenced snapshots. Neither holds it
	// while unpacking or downloading.
	layerMu sync.RWMutex

	usageMu sync.RWMutex
	usage   ContainerUsage

	// dist runs pulls and pushes (pull_jobs.go).
	dist *distribution
}

// New opens the image store, creating its buckets.
func New(opts Options) (*Service, error) {
	if err := initBuckets(opts.DB); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{db: opts.DB, content: opts.Content, sn: opts.Snapshotter, driver: opts.Driver, log: log,
		dist: newDistribution(opts.Remote, opts.MaxDownloads, opts.MaxUploads)}, nil
}

// SetContainerUsage connects the container service once it exists.
func (s *Service) SetContainerUsage(u ContainerUsage) {
	s.usageMu.Lock()
	s.usage = u
	s.usageMu.Unlock()
}

func (s *Service) users(ctx context.Context, id digest.Digest) ([]string, bool) {
	s.usageMu.RLock()
	u := s.usage
	s.usageMu.RUnlock()
	if u == nil {
		return nil, false
	}
	return u.ImageUsers(ctx, id.String())
}

func (s *Service) view() (*state, error) {
	var st *state
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		st, err = loadState(tx)
		return err
	})
	return st, err
}

// ParseReference normalises a user's image reference as Docker does
// ("busybox" -> "docker.io/library/busybox:latest").
func ParseReference(s string) (reference.Named, error) {
	ref, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %w", invalidRef(err))
	}
	return reference.TagNameOnly(ref), nil
}

func invalidRef(err error) error {
	msg := err.Error()
	if strings.HasPrefix(msg, "invalid reference format") {
		msg = strings.TrimPrefix(strings.TrimPrefix(msg, "invalid reference format"), ": ")
	}
	if msg == "" {
		return errdefs.ErrInvalidArgument
	}
	return errdefs.Errorf(errdefs.ErrInvalidArgument, "%s", msg)
}

// noSuchImage names the image as dockerd does: a name gets its implied
// tag ("nope" -> "nope:latest"); an ID or digest stays as given.
func noSuchImage(s string) error {
	if ref, err := reference.ParseNormalizedNamed(s); err == nil {
		s = reference.FamiliarString(reference.TagNameOnly(ref))
	}
	return errdefs.Errorf(errdefs.ErrNotFound, "No such image: %s", s)
}

// resolve finds the image a user means: a tag or digest reference, a full
// image ID, or an unambiguous ID prefix. The key is the tag key when the
// image was named by reference, "" when named by ID.
func (st *state) resolve(s string) (id digest.Digest, key string, err error) {
	if d, err := digest.Parse(s); err == nil {
		if _, ok := st.images[d]; ok {
			return d, "", nil
		}
		return "", "", noSuchImage(s)
	}
	if ref, perr := reference.ParseNormalizedNamed(s); perr == nil {
		key := reference.TagNameOnly(ref).String()
		if id, ok := st.tags[key]; ok {
			return id, key, nil
		}
	}
	if isHexPrefix(s) {
		var found []digest.Digest
		for id := range st.images {
			if strings.HasPrefix(id.Encoded(), s) {
				found = append(found, id)
			}
		}
		switch len(found) {
		case 1:
			return found[0], "", nil
		case 0:
		default:
			return "", "", errdefs.Errorf(errdefs.ErrInvalidArgument, "multiple IDs found with provided prefix: %s", s)
		}
	}
	if _, perr := reference.ParseNormalizedNamed(s); perr != nil && !isHexPrefix(s) {
		return "", "", fmt.Errorf("invalid reference format: %w", invalidRef(perr))
	}
	return "", "", noSuchImage(s)
}

func isHexPrefix(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Resolve returns the ID of the image a user names.
func (s *Service) Resolve(ctx context.Context, name string) (digest.Digest, error) {
	st, err := s.view()
	if err != nil {
		return "", err
	}
	id, _, err := st.resolve(name)
	return id, err
}

// Config returns an image's config.
func (s *Service) Config(ctx context.Context, id digest.Digest) (*Config, error) {
	b, err := s.content.ReadAll(ctx, id, maxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", id, err)
	}
	return ParseConfig(b)
}

// TopLayer returns the chain ID of an image's top layer ("" for an image
// without layers): the parent snapshot of its containers.
func (s *Service) TopLayer(ctx context.Context, id digest.Digest) (string, error) {
	st, err := s.view()
	if err != nil {
		return "", err
	}
	r, ok := st.images[id]
	if !ok {
		return "", noSuchImage(id.String())
	}
	if len(r.ChainIDs) == 0 {
		return "", nil
	}
	return r.ChainIDs[len(r.ChainIDs)-1].String(), nil
}

// TagImage points target (repo[:tag]) at the image source names.
func (s *Service) TagImage(ctx context.Context, source, target string) error {
	ref, err := ParseReference(target)
	if err != nil {
		return err
	}
	if _, ok := ref.(reference.Digested); ok {
		return fmt.Errorf("refusing to create a tag with a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		st, err := loadState(tx)
		if err != nil {
			return err
		}
		id, _, err := st.resolve(source)
		if err != nil {
			return err
		}
		return setTag(tx, st, ref.String(), id)
	})
}

// setTag points key at id and stamps the image's LastTagTime.
func setTag(tx *bolt.Tx, st *state, key string, id digest.Digest) error {
	if err := tx.Bucket(bucketTags).Put([]byte(key), []byte(id)); err != nil {
		return err
	}
	r := st.images[id]
	r.LastTagTime = time.Now().UTC()
	st.images[id] = r
	st.tags[key] = id
	return putJSON(tx.Bucket(bucketImages), id.String(), r)
}
