package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"berth/errdefs"
	"berth/remote"
	"berth/remote/credentials"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// PullOptions tunes PullImage.
type PullOptions struct {
	// Platform is os/arch[/variant]; empty picks the host's from an index.
	Platform string
	// AllTags pulls every tag of the repository (the reference must name
	// neither tag nor digest).
	AllTags bool
	// Auth is what the client sent in X-Registry-Auth.
	Auth credentials.AuthConfig
}

// Progress is one message of a pull or push progress stream, as Docker's
// JSON-message stream carries it: ID is a short layer ID (or a tag) and
// Current/Total, when Total > 0, drive a progress bar.
type Progress struct {
	ID      string
	Status  string
	Current int64
	Total   int64
	// Aux is set on the final message of each pushed tag.
	Aux *PushResult
	// Message marks a line that is not a layer's status ("v1: Pulling
	// from ..."): clients print it on its own rather than redrawing a
	// layer line, so it travels without a progress detail.
	Message bool
}

// ProgressFunc receives progress messages, one call at a time.
type ProgressFunc func(Progress)

// serialized makes fn safe to call from the concurrent layer jobs.
func serialized(fn ProgressFunc) ProgressFunc {
	if fn == nil {
		return func(Progress) {}
	}
	var mu sync.Mutex
	return func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		fn(p)
	}
}

// PullImage pulls name (Docker's normalisation: docker.io, library/,
// latest) from its registry, reporting progress as `docker pull` shows it.
// Layers already present are skipped, the others are downloaded
// concurrently and unpacked in order; the image becomes visible, tagged
// and with its RepoDigest, only when every layer is committed.
func (s *Service) PullImage(ctx context.Context, name string, opts PullOptions, progress ProgressFunc) error {
	if s.dist.remote == nil {
		return fmt.Errorf("pull %s: no registry client configured: %w", name, errdefs.ErrNotImplemented)
	}
	progress = serialized(progress)
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return fmt.Errorf("invalid reference format: %w", invalidRef(err))
	}
	platform, explicit, err := pullPlatform(opts.Platform)
	if err != nil {
		return err
	}
	sess := s.dist.remote.Session(remote.ForRegistry(opts.Auth))
	p := &puller{s: s, sess: sess, platform: platform, explicit: explicit, progress: progress}
	if !opts.AllTags {
		ref := reference.TagNameOnly(named)
		fresh, err := p.pullOne(ctx, ref)
		if err != nil {
			return err
		}
		progress(Progress{Status: statusLine(fresh, reference.FamiliarString(ref))})
		return nil
	}
	if !reference.IsNameOnly(named) {
		return fmt.Errorf("tag can't be used with --all-tags/-a: %w", errdefs.ErrInvalidArgument)
	}
	tags, err := sess.Tags(ctx, named)
	if err != nil {
		return err
	}
	if len(tags) == 0 {
		return errdefs.Errorf(errdefs.ErrNotFound, "repository %s has no tags", reference.FamiliarName(named))
	}
	anyFresh := false
	for _, tag := range tags {
		ref, err := reference.WithTag(named, tag)
		if err != nil {
			return fmt.Errorf("tag %q: %w", tag, invalidRef(err))
		}
		fresh, err := p.pullOne(ctx, ref)
		if err != nil {
			return err
		}
		anyFresh = anyFresh || fresh
	}
	progress(Progress{Status: statusLine(anyFresh, reference.FamiliarName(named))})
	return nil
}

func statusLine(fresh bool, name string) string {
	if fresh {
		return "Status: Downloaded newer image for " + name
	}
	return "Status: Image is up to date for " + name
}

// pullPlatform parses --platform; explicit says the user asked for one.
func pullPlatform(s string) (ocispec.Platform, bool, error) {
	if s == "" {
		return remote.NormalizePlatform(ocispec.Platform{}), false, nil
	}
	p, err := parsePlatform(s)
	if err != nil {
		return p, true, err
	}
	return remote.NormalizePlatform(p), true, nil
}

// puller is one PullImage call.
type puller struct {
	s        *Service
	sess     *remote.Session
	platform ocispec.Platform
	explicit bool
	progress ProgressFunc
}

// pullOne pulls one tag or digest and reports whether the reference now
// names a different image than before.
func (p *puller) pullOne(ctx context.Context, ref reference.Named) (bool, error) {
	res, err := p.sess.Resolve(ctx, ref, p.platform)
	if err != nil {
		return false, manifestError(ref, err)
	}
	id := tagOrDigest(ref)
	p.progress(Progress{ID: id, Status: "Pulling from " + reference.Path(ref), Message: true})
	cfgBytes, cfg, err := p.config(ctx, res)
	if err != nil {
		return false, err
	}
	specs, err := layerSpecs(res.Parsed, cfg)
	if err != nil {
		return false, fmt.Errorf("%s: %w", reference.FamiliarString(ref), err)
	}
	chains := make([]digest.Digest, len(specs))
	for i, l := range specs {
		chains[i] = l.chain
	}
	unpin, present, err := p.s.pinLayers(ctx, chains)
	if err != nil {
		return false, err
	}
	defer unpin()
	for attempt := 0; ; attempt++ {
		err := p.layers(ctx, ref, specs, present)
		// A job shared with a pull whose client went away is cancelled
		// under us; start our own.
		if err == nil || ctx.Err() != nil || !errors.Is(err, context.Canceled) || attempt == 2 {
			if err != nil {
				return false, err
			}
			break
		}
		for i, c := range chains {
			if present[i], err = p.s.layerExists(ctx, c); err != nil {
				return false, err
			}
		}
	}
	repoDigest := res.Descriptor.Digest
	if res.Index != nil {
		repoDigest = res.Index.Digest
	}
	fresh, err := p.s.recordPulled(ctx, ref, repoDigest, res.Parsed.Config.Digest, cfgBytes, cfg)
	if err != nil {
		return false, err
	}
	p.progress(Progress{Status: "Digest: " + repoDigest.String()})
	return fresh, nil
}

func tagOrDigest(ref reference.Named) string {
	if d, ok := ref.(reference.Digested); ok {
		return d.Digest().String()
	}
	if t, ok := ref.(reference.Tagged); ok {
		return t.Tag()
	}
	return "latest"
}

// manifestError words a failed resolve as dockerd does ("manifest for
// host/repo:tag not found: manifest unknown: ...").
func manifestError(ref reference.Named, err error) error {
	var se *remote.StatusError
	if errors.As(err, &se) && errors.Is(err, errdefs.ErrNotFound) {
		msg := "manifest unknown"
		for _, re := range se.Errors {
			if re.Message != "" {
				msg = strings.ToLower(strings.ReplaceAll(re.Code, "_", " ")) + ": " + re.Message
				break
			}
		}
		return errdefs.Errorf(errdefs.ErrNotFound, "manifest for %s not found: %s", reference.FamiliarString(ref), msg)
	}
	if errors.As(err, &se) && (errors.Is(err, errdefs.ErrUnauthenticated) || errors.Is(err, errdefs.ErrPermissionDenied)) {
		// NotFound as in dockerd: a 401 would make the docker CLI prompt
		// for a login in the middle of a pull.
		return errdefs.Errorf(errdefs.ErrNotFound, "pull access denied for %s, repository does not exist or may require 'docker login': %v", reference.FamiliarName(ref), se)
	}
	return err
}

// config fetches (or finds locally) and checks the image config.
func (p *puller) config(ctx context.Context, res remote.Resolved) ([]byte, *Config, error) {
	desc := res.Parsed.Config
	switch desc.MediaType {
	case remote.MediaTypeDockerConfig, ocispec.MediaTypeImageConfig:
	default:
		return nil, nil, fmt.Errorf("%s is not a container image: config media type %q: %w", reference.FamiliarString(res.Ref), desc.MediaType, errdefs.ErrNotImplemented)
	}
	if desc.Size > maxConfigSize {
		return nil, nil, fmt.Errorf("image config %s: %d bytes, more than %d: %w", desc.Digest, desc.Size, maxConfigSize, errdefs.ErrInvalidArgument)
	}
	raw, err := p.s.content.ReadAll(ctx, desc.Digest, maxConfigSize)
	if err != nil {
		v, ferr, _ := p.s.dist.configs.Do(desc.Digest.String(), func() (any, error) {
			return p.fetchSmall(ctx, res.Ref, desc)
		})
		if errors.Is(ferr, context.Canceled) && ctx.Err() == nil {
			// Shared with a pull whose client left: fetch it ourselves.
			v, ferr = p.fetchSmall(ctx, res.Ref, desc)
		}
		if ferr != nil {
			return nil, nil, fmt.Errorf("image config: %w", ferr)
		}
		raw = v.([]byte)
	}
	cfg, err := ParseConfig(raw)
	if err != nil {
		return nil, nil, err
	}
	if err := p.checkPlatform(res, cfg); err != nil {
		return nil, nil, err
	}
	return raw, cfg, nil
}

func (p *puller) fetchSmall(ctx context.Context, ref reference.Named, desc ocispec.Descriptor) ([]byte, error) {
	rc, err := p.sess.FetchBlob(ctx, ref, desc, 0)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	vr, err := remote.VerifyReader(rc, desc)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(vr)
}

func (p *puller) checkPlatform(res remote.Resolved, cfg *Config) error {
	if cfg.OS != "" && cfg.OS != "linux" {
		return fmt.Errorf("image operating system %q cannot be used on this platform: %w", cfg.OS, errdefs.ErrInvalidArgument)
	}
	if !p.explicit || res.Index != nil {
		return nil // an index entry was chosen for the platform already
	}
	got := remote.NormalizePlatform(ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant})
	if got.Architecture != p.platform.Architecture || (p.platform.Variant != "" && got.Variant != p.platform.Variant) {
		return errdefs.Errorf(errdefs.ErrNotFound, "image with reference %s was found but does not match the specified platform: wanted %s, actual: %s",
			reference.FamiliarString(res.Ref), remote.PlatformString(p.platform), remote.PlatformString(got))
	}
	return nil
}

// layerSpecs pairs the manifest's blobs with the config's diff IDs.
func layerSpecs(m ocispec.Manifest, cfg *Config) ([]layerSpec, error) {
	if len(m.Layers) != len(cfg.RootFS.DiffIDs) {
		return nil, fmt.Errorf("manifest lists %d layers but the config %d diff IDs: %w", len(m.Layers), len(cfg.RootFS.DiffIDs), errdefs.ErrInvalidArgument)
	}
	chains := chainIDs(cfg.RootFS.DiffIDs)
	out := make([]layerSpec, len(m.Layers))
	for i, desc := range m.Layers {
		if !pullableLayer(desc.MediaType) {
			return nil, fmt.Errorf("layer %s: media type %q: %w", desc.Digest, desc.MediaType, errdefs.ErrNotImplemented)
		}
		out[i] = layerSpec{desc: desc, diffID: cfg.RootFS.DiffIDs[i], chain: chains[i]}
		if i > 0 {
			out[i].parent = chains[i-1]
		}
	}
	return out, nil
}

func pullableLayer(mt string) bool {
	switch mt {
	case remote.MediaTypeDockerLayer, "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.diff.tar",
		ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still found in registries
		ocispec.MediaTypeImageLayerNonDistributableZstd: //nolint:staticcheck // idem
		return true
	}
	return false
}

// layers makes every layer exist, sharing jobs with concurrent pulls.
func (p *puller) layers(ctx context.Context, ref reference.Named, specs []layerSpec, present []bool) error {
	jobs := make([]*layerJob, len(specs))
	var detach []func()
	defer func() {
		for _, d := range detach {
			d()
		}
	}()
	for i, l := range specs {
		id := shortID(l.desc.Digest)
		if present[i] {
			p.progress(Progress{ID: id, Status: "Already exists"})
			continue
		}
		p.progress(Progress{ID: id, Status: "Pulling fs layer"})
	}
	var parent *layerJob
	for i, l := range specs {
		if present[i] {
			parent = nil
			continue
		}
		id := shortID(l.desc.Digest)
		jobs[i] = p.s.dist.layerJob(ctx, p.s, l, p.sess, ref, parent)
		detach = append(detach, jobs[i].watch(func(pr Progress) {
			pr.ID = id
			p.progress(pr)
		}))
		parent = jobs[i]
	}
	for _, j := range jobs {
		if j == nil {
			continue
		}
		if err := j.wait(ctx); err != nil {
			return err
		}
	}
	return nil
}
