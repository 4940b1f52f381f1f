package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"berth/errdefs"
	"berth/remote"
	"berth/remote/credentials"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sync/errgroup"
)

// PushOptions tunes PushImage.
type PushOptions struct {
	// Tag selects the tag to push; empty with AllTags pushes every local
	// tag of the repository.
	Tag     string
	AllTags bool
	Auth    credentials.AuthConfig
}

// PushResult is the aux message Docker sends after each pushed tag.
type PushResult struct {
	Tag    string
	Digest string
	Size   int
}

// PushImage pushes local tags of repository name to its registry as Docker
// schema2 manifests (application/vnd.docker.distribution.manifest.v2+json
// with gzip layers), as docker push does. A layer the registry holds
// already is skipped, one that another repository of the same registry
// holds is mounted from there, and the rest are compressed and uploaded
// concurrently.
func (s *Service) PushImage(ctx context.Context, name string, opts PushOptions, progress ProgressFunc) error {
	if s.dist.remote == nil {
		return fmt.Errorf("push %s: no registry client configured: %w", name, errdefs.ErrNotImplemented)
	}
	progress = serialized(progress)
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return fmt.Errorf("invalid reference format: %w", invalidRef(err))
	}
	if _, ok := named.(reference.Digested); ok {
		return fmt.Errorf("cannot push a digest reference: %w", errdefs.ErrInvalidArgument)
	}
	tag := opts.Tag
	if t, ok := named.(reference.Tagged); ok && tag == "" {
		tag = t.Tag()
	}
	repo := reference.TrimNamed(named)
	targets, err := s.pushTargets(repo, tag, opts.AllTags)
	if err != nil {
		return err
	}
	sess := s.dist.remote.Session(remote.ForRegistry(opts.Auth))
	progress(Progress{Status: "The push refers to repository [" + repo.Name() + "]"})
	for _, t := range targets {
		err := s.pushOne(ctx, sess, t.ref, t.id, progress)
		if errors.Is(err, errdefs.ErrUnauthenticated) || errors.Is(err, errdefs.ErrPermissionDenied) {
			return fmt.Errorf("push access denied for %s, log in to %s first: %w", repo.Name(), reference.Domain(repo), err)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type pushTarget struct {
	ref reference.NamedTagged
	id  digest.Digest
}

// pushTargets lists the local tags to push, sorted by tag.
func (s *Service) pushTargets(repo reference.Named, tag string, all bool) ([]pushTarget, error) {
	if tag == "" && !all {
		tag = "latest"
	}
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	var out []pushTarget
	for key, id := range st.tags {
		rest, ok := strings.CutPrefix(key, repo.Name()+":")
		if !ok || strings.Contains(rest, "/") || strings.Contains(rest, "@") || (tag != "" && rest != tag) {
			continue
		}
		ref, err := reference.WithTag(repo, rest)
		if err != nil {
			continue
		}
		out = append(out, pushTarget{ref: ref, id: id})
	}
	if len(out) == 0 {
		name := reference.FamiliarName(repo)
		if tag != "" {
			name += ":" + tag
		}
		return nil, errdefs.Errorf(errdefs.ErrNotFound, "An image does not exist locally with the tag: %s", name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ref.Tag() < out[j].ref.Tag() })
	return out, nil
}

// schema2Manifest is a Docker image manifest with its fields in the order
// docker writes them.
type schema2Manifest struct {
	SchemaVersion int                 `json:"schemaVersion"`
	MediaType     string              `json:"mediaType"`
	Config        schema2Descriptor   `json:"config"`
	Layers        []schema2Descriptor `json:"layers"`
}

type schema2Descriptor struct {
	MediaType string        `json:"mediaType"`
	Size      int64         `json:"size"`
	Digest    digest.Digest `json:"digest"`
}

// pushOne pushes one tag: layers and config, then the manifest; on success
// the image gains the RepoDigest repo@<manifest digest>.
func (s *Service) pushOne(ctx context.Context, sess *remote.Session, ref reference.NamedTagged, id digest.Digest, progress ProgressFunc) error {
	layers, err := s.imageLayers(id)
	if err != nil {
		return err
	}
	raw, err := s.content.ReadAll(ctx, id, maxConfigSize)
	if err != nil {
		return fmt.Errorf("image %s: config: %w", shortID(id), err)
	}
	for i := len(layers) - 1; i >= 0; i-- {
		progress(Progress{ID: shortID(layers[i].DiffID), Status: "Preparing"})
	}
	descs := make([]ocispec.Descriptor, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.dist.uploads)
	for i := len(layers) - 1; i >= 0; i-- {
		l := layers[i]
		if i < len(layers)-s.dist.uploads {
			progress(Progress{ID: shortID(l.DiffID), Status: "Waiting"})
		}
		g.Go(func() error {
			up := &layerUpload{s: s, sess: sess, ref: ref, layer: l, progress: func(p Progress) {
				p.ID = shortID(l.DiffID)
				progress(p)
			}}
			d, err := up.push(gctx)
			descs[i] = d
			return err
		})
	}
	cfgDesc := ocispec.Descriptor{MediaType: remote.MediaTypeDockerConfig, Digest: id, Size: int64(len(raw))}
	g.Go(func() error { return pushSmallBlob(gctx, sess, ref, cfgDesc, raw) })
	if err := g.Wait(); err != nil {
		return err
	}
	m := schema2Manifest{SchemaVersion: 2, MediaType: remote.MediaTypeDockerManifest,
		Config: schema2Descriptor{MediaType: cfgDesc.MediaType, Size: cfgDesc.Size, Digest: cfgDesc.Digest}}
	for _, d := range descs {
		m.Layers = append(m.Layers, schema2Descriptor{MediaType: d.MediaType, Size: d.Size, Digest: d.Digest})
	}
	body, err := json.MarshalIndent(m, "", "   ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	dgst, err := sess.PushManifest(ctx, ref, remote.MediaTypeDockerManifest, body)
	if err != nil {
		return err
	}
	if err := s.addRepoDigest(ref, dgst, id); err != nil {
		return err
	}
	progress(Progress{Status: fmt.Sprintf("%s: digest: %s size: %d", ref.Tag(), dgst, len(body)),
		Aux: &PushResult{Tag: ref.Tag(), Digest: dgst.String(), Size: len(body)}})
	return nil
}

// imageLayers returns an image's layer records, bottom first.
func (s *Service) imageLayers(id digest.Digest) ([]layerRecord, error) {
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	r, ok := st.images[id]
	if !ok {
		return nil, noSuchImage(id.String())
	}
	out := make([]layerRecord, len(r.ChainIDs))
	for i, c := range r.ChainIDs {
		l, ok := st.layers[c]
		if !ok {
			return nil, fmt.Errorf("image %s: layer %s: %w", shortID(id), c, errdefs.ErrNotFound)
		}
		out[i] = l
	}
	return out, nil
}

func (s *Service) addRepoDigest(ref reference.Named, dgst, id digest.Digest) error {
	dref, err := reference.WithDigest(reference.TrimNamed(ref), dgst)
	if err != nil {
		return fmt.Errorf("repo digest: %w", invalidRef(err))
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketImages).Get([]byte(id.String())) == nil {
			return nil // removed while pushing
		}
		return tx.Bucket(bucketTags).Put([]byte(dref.String()), []byte(id))
	})
}

// pushSmallBlob uploads a config unless the repository has it.
func pushSmallBlob(ctx context.Context, sess *remote.Session, ref reference.Named, desc ocispec.Descriptor, raw []byte) error {
	ok, err := sess.BlobExists(ctx, ref, desc)
	if err != nil || ok {
		return err
	}
	return sess.PushBlob(ctx, ref, desc, strings.NewReader(string(raw)))
}
