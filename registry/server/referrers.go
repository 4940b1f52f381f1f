package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"berth/errdefs"
)

func referrerEntry(name string, subject, d digest.Digest) string {
	return referrersPath(name, subject) + "/" + d.Algorithm().String() + "-" + d.Encoded()
}

// putReferrer records manifest d under its subject. The artifact type is the
// manifest's artifactType, else (image manifests) its config's media type.
func (s *Server) putReferrer(ctx context.Context, name string, d digest.Digest, m manifest, mt string, size int64) error {
	desc := ocispec.Descriptor{MediaType: mt, Digest: d, Size: size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if desc.ArtifactType == "" && m.Config != nil {
		desc.ArtifactType = m.Config.MediaType
	}
	if err := m.Subject.Digest.Validate(); err != nil {
		return errf(http.StatusBadRequest, codeManifestInvalid, "invalid subject digest %q", m.Subject.Digest)
	}
	return s.st.putJSON(ctx, referrerEntry(name, m.Subject.Digest, d), desc)
}

// getReferrers answers the referrers API: always an index, empty when
// nothing refers to the digest, filtered by ?artifactType=.
func (s *Server) getReferrers(w http.ResponseWriter, r *http.Request, rt route) error {
	ctx := r.Context()
	subj, err := parseDigest(rt.ref)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	names, err := s.st.listOrEmpty(ctx, referrersPath(rt.name, subj))
	if err != nil {
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	for _, n := range names {
		var desc ocispec.Descriptor
		err := s.st.getJSON(ctx, referrersPath(rt.name, subj)+"/"+n, &desc)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // deleted while listing
		} else if err != nil {
			return err
		}
		if filter == "" || desc.ArtifactType == filter {
			idx.Manifests = append(idx.Manifests, desc)
		}
	}
	body, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body)
	return nil
}
