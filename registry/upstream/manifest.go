package upstream

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
)

// Manifest media types a mirror asks for and accepts.
var manifestTypes = []string{
	"application/vnd.oci.image.index.v1+json",
	"application/vnd.oci.image.manifest.v1+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
	"application/vnd.docker.distribution.manifest.v2+json",
}

// Manifest is a manifest as the upstream served it.
type Manifest struct {
	MediaType string
	Digest    digest.Digest
	Body      []byte // nil for HEAD
}

// Manifest fetches repo's manifest ref (a tag or a digest); HEAD learns
// only its digest and type. At most maxSize bytes are read; the body must
// be a manifest whose digest matches the reference or the upstream's
// Docker-Content-Digest.
func (c *Client) Manifest(ctx context.Context, repo, ref string, head bool, maxSize int64) (Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	hdr := http.Header{"Accept": {strings.Join(manifestTypes, ", ")}}
	res, err := c.do(ctx, method, "/v2/"+repo+"/manifests/"+ref, repo, hdr)
	if err != nil {
		return Manifest{}, err
	}
	what := "manifest " + repo + ":" + ref
	if res.StatusCode != http.StatusOK {
		return Manifest{}, c.statusError(res, what)
	}
	defer drain(res)
	mt, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	m := Manifest{MediaType: mt}
	if dh := res.Header.Get("Docker-Content-Digest"); dh != "" {
		if m.Digest, err = digest.Parse(dh); err != nil {
			return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: bad Docker-Content-Digest %q", what, dh)
		}
	}
	want, byDigest := digest.Digest(""), strings.Contains(ref, ":")
	if byDigest {
		want = digest.Digest(ref)
	}
	if head {
		if m.Digest == "" {
			m.Digest = want
		}
		if m.Digest == "" {
			return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: HEAD without Docker-Content-Digest", what)
		}
		return m, nil
	}
	if res.ContentLength > maxSize {
		return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: %d bytes, over the %d limit", what, res.ContentLength, maxSize)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, maxSize+1))
	if err != nil {
		return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: reading: %v", what, err)
	}
	if int64(len(body)) > maxSize {
		return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: over the %d byte limit", what, maxSize)
	}
	return c.checkManifest(m, body, want, what)
}

// checkManifest verifies the body against the digest asked for or
// announced, and that it is a manifest of a known type.
func (c *Client) checkManifest(m Manifest, body []byte, want digest.Digest, what string) (Manifest, error) {
	if want == "" {
		want = m.Digest
	}
	alg := digest.SHA256
	if want != "" {
		if want.Validate() != nil {
			return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: bad digest %q", what, want)
		}
		alg = want.Algorithm()
	}
	got := alg.FromBytes(body)
	if want != "" && got != want {
		return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: content has digest %s, not %s", what, got, want)
	}
	var probe struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
	}
	if err := json.Unmarshal(body, &probe); err != nil || probe.SchemaVersion != 2 {
		return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: not a schema 2 manifest", what)
	}
	if m.MediaType == "" || m.MediaType == "application/json" || m.MediaType == "application/octet-stream" {
		m.MediaType = probe.MediaType
	}
	known := false
	for _, t := range manifestTypes {
		known = known || t == m.MediaType
	}
	if !known {
		return Manifest{}, c.errorf(errdefs.ErrUnavailable, "%s: unsupported media type %q", what, m.MediaType)
	}
	m.Digest, m.Body = got, body
	return m, nil
}
