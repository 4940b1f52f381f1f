package remote

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

// ParseReference parses a user's image reference with Docker's
// normalisation (docker.io, library/) and adds the tag "latest" when it
// has neither tag nor digest.
func ParseReference(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return reference.TagNameOnly(named), nil
}

// Resolved is a reference resolved to one image manifest.
type Resolved struct {
	// Ref is the reference that was resolved.
	Ref reference.Named
	// Descriptor describes the image manifest (for the chosen platform).
	Descriptor ocispec.Descriptor
	// Manifest is the manifest exactly as the registry sent it; its digest
	// is Descriptor.Digest.
	Manifest []byte
	// Parsed is Manifest decoded: config and layers.
	Parsed ocispec.Manifest
	// Index describes the index or manifest list the reference pointed at,
	// if it did; IndexBody is that index's bytes. Docker's RepoDigests use
	// Index.Digest when set.
	Index     *ocispec.Descriptor
	IndexBody []byte
}

// Resolve fetches the manifest ref names. For an index or manifest list it
// selects the entry for platform (the host's when zero) and fetches that.
// Every manifest's bytes are checked against the registry's
// Docker-Content-Digest and against the reference's digest.
func (s *Session) Resolve(ctx context.Context, ref reference.Named, platform ocispec.Platform) (Resolved, error) {
	ref = reference.TagNameOnly(ref)
	res := Resolved{Ref: ref}
	var tagOrDigest string
	var want digest.Digest
	if d, ok := ref.(reference.Digested); ok {
		want, tagOrDigest = d.Digest(), d.Digest().String()
	} else {
		tagOrDigest = ref.(reference.Tagged).Tag()
	}
	desc, body, err := s.fetchManifest(ctx, ref, tagOrDigest, want)
	if err != nil {
		return res, err
	}
	switch {
	case IsIndex(desc.MediaType):
		idx, err := ParseIndex(body)
		if err != nil {
			return res, fmt.Errorf("%s: %w", reference.FamiliarString(ref), err)
		}
		want := NormalizePlatform(platform)
		child, ok := selectPlatform(idx, want)
		if !ok {
			return res, errdefs.Errorf(errdefs.ErrNotFound, "no matching manifest for %s in the manifest list entries", PlatformString(want))
		}
		indexDesc := desc
		res.Index, res.IndexBody = &indexDesc, body
		cdesc, cbody, err := s.fetchManifest(ctx, ref, child.Digest.String(), child.Digest)
		if err != nil {
			return res, err
		}
		if !IsManifest(cdesc.MediaType) {
			return res, fmt.Errorf("%s: index entry %s is a %q, not an image manifest: %w", reference.FamiliarString(ref), child.Digest, cdesc.MediaType, errdefs.ErrNotImplemented)
		}
		cdesc.Platform = child.Platform
		desc, body = cdesc, cbody
	case IsManifest(desc.MediaType):
	case desc.MediaType == mediaTypeDockerSchema1 || desc.MediaType == mediaTypeDockerSchema1Signd:
		return res, fmt.Errorf("%s: Docker image manifest schema 1 is no longer supported: %w", reference.FamiliarString(ref), errdefs.ErrNotImplemented)
	default:
		return res, fmt.Errorf("%s: manifest media type %q: %w", reference.FamiliarString(ref), desc.MediaType, errdefs.ErrNotImplemented)
	}
	parsed, err := ParseManifest(body)
	if err != nil {
		return res, fmt.Errorf("%s: %w", reference.FamiliarString(ref), err)
	}
	res.Descriptor, res.Manifest, res.Parsed = desc, body, parsed
	return res, nil
}

// FetchManifest fetches the manifest or index stored under tagOrDigest in
// ref's repository, verified as Resolve does, without selecting a platform.
func (s *Session) FetchManifest(ctx context.Context, ref reference.Named, tagOrDigest string) (ocispec.Descriptor, []byte, error) {
	var want digest.Digest
	if d, err := digest.Parse(tagOrDigest); err == nil {
		want = d
	}
	return s.fetchManifest(ctx, ref, tagOrDigest, want)
}

func (s *Session) fetchManifest(ctx context.Context, ref reference.Named, tagOrDigest string, want digest.Digest) (ocispec.Descriptor, []byte, error) {
	name := reference.FamiliarName(ref) + ":" + tagOrDigest
	if want != "" {
		name = reference.FamiliarName(ref) + "@" + tagOrDigest
	}
	resp, _, err := s.do(ctx, request{
		method: http.MethodGet, domain: reference.Domain(ref),
		path:   "/v2/" + reference.Path(ref) + "/manifests/" + tagOrDigest,
		header: http.Header{"Accept": {acceptManifests}},
		scopes: []string{pullScope(ref)}, pull: true, idempotent: true,
	})
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %w", name, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest for %s: %w", name, responseError(resp))
	}
	if resp.ContentLength > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: %d bytes, more than %d: %w", name, resp.ContentLength, MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: read: %w: %w", name, err, errdefs.ErrUnavailable)
	}
	if len(body) > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s: more than %d bytes: %w", name, MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" {
		if err := verifyDigest("manifest "+name, body, digest.Digest(h)); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
	}
	dgst := digest.FromBytes(body)
	if want != "" {
		if err := verifyDigest("manifest "+name, body, want); err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		dgst = want
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if !IsIndex(mt) && !IsManifest(mt) {
		if sniffed := sniffMediaType(body); sniffed != "" {
			mt = sniffed
		}
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: int64(len(body))}, body, nil
}

func pullScope(ref reference.Named) string {
	return "repository:" + reference.Path(ref) + ":pull"
}

func pushScope(ref reference.Named) string {
	return "repository:" + reference.Path(ref) + ":pull,push"
}

// Head asks for the descriptor of the manifest ref names without fetching
// it (HEAD), so a caller can find that its copy is current. The digest is
// the registry's Docker-Content-Digest, unverifiable until the bytes are
// fetched; a registry that does not send it yields ErrNotImplemented, and
// the caller falls back to Resolve.
func (s *Session) Head(ctx context.Context, ref reference.Named) (ocispec.Descriptor, error) {
	ref = reference.TagNameOnly(ref)
	target := ""
	if d, ok := ref.(reference.Digested); ok {
		target = d.Digest().String()
	} else {
		target = ref.(reference.Tagged).Tag()
	}
	resp, _, err := s.do(ctx, request{
		method: http.MethodHead, domain: reference.Domain(ref),
		path:   "/v2/" + reference.Path(ref) + "/manifests/" + target,
		header: http.Header{"Accept": {acceptManifests}},
		scopes: []string{pullScope(ref)}, pull: true, idempotent: true,
	})
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: %w", reference.FamiliarString(ref), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, fmt.Errorf("manifest for %s: %w", reference.FamiliarString(ref), responseError(resp))
	}
	dgst, err := digest.Parse(resp.Header.Get("Docker-Content-Digest"))
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: no usable Docker-Content-Digest: %w", reference.FamiliarString(ref), errdefs.ErrNotImplemented)
	}
	if d, ok := ref.(reference.Digested); ok && d.Digest() != dgst {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: registry reports digest %s: %w", reference.FamiliarString(ref), dgst, errdefs.ErrInvalidArgument)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.ContentLength < 0 || resp.ContentLength > MaxManifestSize {
		return ocispec.Descriptor{}, fmt.Errorf("manifest %s: size %d: %w", reference.FamiliarString(ref), resp.ContentLength, errdefs.ErrInvalidArgument)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: resp.ContentLength}, nil
}
