package ui

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"berth/registry/auth"
	"berth/registry/server"
)

const (
	mtDockerConfig = "application/vnd.docker.container.image.v1+json"
	// attestationRef marks buildx's attestation manifests inside an index.
	attestationRef = "vnd.docker.reference.type"
)

// manifestDoc is the union of image manifests and indexes.
type manifestDoc struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

// summary is what a tag row shows.
type summary struct {
	Digest       string
	Kind         string // image, index, artifact or unknown
	ArtifactType string
	Size         int64 // config and layers of an image; the manifest itself otherwise
	Platforms    []string
	Created      string // an image's, from its config (describe)
}

func parseDoc(m fetchedManifest) (manifestDoc, error) {
	var doc manifestDoc
	err := json.Unmarshal(m.raw, &doc)
	return doc, err
}

func isIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == "application/vnd.docker.distribution.manifest.list.v2+json"
}

func isImageConfig(mt string) bool { return mt == ocispec.MediaTypeImageConfig || mt == mtDockerConfig }

func summarize(m fetchedManifest) summary {
	s := summary{Digest: m.digest.String(), Kind: "unknown", Size: int64(len(m.raw))}
	doc, err := parseDoc(m)
	if err != nil {
		return s
	}
	switch {
	case isIndex(m.mediaType):
		s.Kind = "index"
		for _, d := range doc.Manifests {
			if p := platformOf(d); p != "" {
				s.Platforms = append(s.Platforms, p)
			}
		}
	case doc.Config != nil:
		s.Kind, s.Size = "image", doc.Config.Size
		for _, l := range doc.Layers {
			s.Size += l.Size
		}
		if doc.ArtifactType != "" || !isImageConfig(doc.Config.MediaType) {
			s.Kind, s.ArtifactType = "artifact", doc.ArtifactType
			if s.ArtifactType == "" {
				s.ArtifactType = doc.Config.MediaType
			}
		}
	}
	s.ArtifactType = strings.TrimSpace(s.ArtifactType)
	return s
}

// describe is summarize plus, for an image, the platform and creation time
// from its config. A config that cannot be read leaves them out: one
// broken image must not take the whole tag list down.
func (u *UI) describe(ctx context.Context, who caller, name string, m fetchedManifest) summary {
	s := summarize(m)
	if s.Kind != "image" {
		return s
	}
	doc, err := parseDoc(m)
	if err != nil || doc.Config == nil {
		return s
	}
	raw, err := u.api.blob(ctx, who, name, doc.Config.Digest)
	if err != nil {
		u.log.DebugContext(ctx, "ui: image config", "repository", name, "digest", doc.Config.Digest, "err", err)
		return s
	}
	var c imageConfig
	if json.Unmarshal(raw, &c) == nil && c.OS != "" {
		s.Platforms = []string{platformString(c.OS, c.Architecture, c.Variant)}
		s.Created = formatTime(c.Created)
	}
	return s
}

// platformOf renders an index entry's platform; attestation manifests
// (platform unknown/unknown) are not platforms.
func platformOf(d ocispec.Descriptor) string {
	if d.Annotations[attestationRef] != "" || d.Platform == nil {
		return ""
	}
	return platformString(d.Platform.OS, d.Platform.Architecture, d.Platform.Variant)
}

func platformString(os, arch, variant string) string {
	s := os + "/" + arch
	if variant != "" {
		s += "/" + variant
	}
	return s
}

// imageConfig is the part of an OCI or Docker image config the page shows;
// Created stays a string so one odd field does not hide the rest.
type imageConfig struct {
	Created      string `json:"created"`
	Author       string `json:"author"`
	OS           string `json:"os"`
	Architecture string `json:"architecture"`
	Variant      string `json:"variant"`
	Config       struct {
		User         string              `json:"User"`
		ExposedPorts map[string]struct{} `json:"ExposedPorts"`
		Env          []string            `json:"Env"`
		Entrypoint   []string            `json:"Entrypoint"`
		Cmd          []string            `json:"Cmd"`
		Volumes      map[string]struct{} `json:"Volumes"`
		WorkingDir   string              `json:"WorkingDir"`
		Labels       map[string]string   `json:"Labels"`
		StopSignal   string              `json:"StopSignal"`
	} `json:"config"`
	RootFS struct {
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
	History []struct {
		Created    string `json:"created"`
		CreatedBy  string `json:"created_by"`
		Comment    string `json:"comment"`
		EmptyLayer bool   `json:"empty_layer"`
	} `json:"history"`
}

type kv struct{ Key, Value string }

func sortedKV(m map[string]string) []kv {
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type layerRow struct {
	Index     int
	MediaType string
	Digest    string
	DiffID    string // the uncompressed content's digest, as docker inspect shows layers
	Size      int64
	CreatedBy string
}

type platformRow struct {
	Platform string
	Digest   string
	Size     int64
	Created  string
	Note     string
}

type historyRow struct {
	Created, CreatedBy, Comment string
	Empty                       bool
}

type configView struct {
	Digest       string
	Created      string
	Author       string
	Platform     string
	User         string
	WorkingDir   string
	Entrypoint   []string
	Cmd          []string
	Env          []string
	Ports        []string
	Volumes      []string
	StopSignal   string
	Labels       []kv
	History      []historyRow
	DiffIDs      []string
	MediaType    string
	NotImageType bool
}

type manifestView struct {
	Repo, Namespace, Ref string
	Tag                  string // when Ref is a tag
	summary
	MediaType   string
	RawSize     int
	Subject     string
	Layers      []layerRow
	Platforms   []platformRow
	Config      *configView
	ConfigError string
	Annotations []kv
	Referrers   []referrerRow
	Pull        string
	PullDigest  string
	CanDelete   bool
	Raw         string
}

type referrerRow struct {
	ArtifactType string
	Digest       string
	Size         int64
	Annotations  []kv
}

func (u *UI) manifest(w http.ResponseWriter, req *request, name, ref string) error {
	ctx, user := req.r.Context(), req.sess.User
	if err := validName(name); err != nil {
		return err
	}
	isDigest := strings.Contains(ref, ":")
	if isDigest && digest.Digest(ref).Validate() != nil || !isDigest && !server.ValidTag(ref) {
		return notFound("manifest %q", ref)
	}
	if ok, err := u.may(ctx, user, name, auth.ActionPull); err != nil {
		return err
	} else if !ok {
		return u.denied(req, name, "view manifests")
	}
	who := req.caller()
	m, err := u.api.manifest(ctx, who, name, ref)
	if err != nil {
		return err
	}
	doc, err := parseDoc(m)
	if err != nil {
		return badRequest("manifest %s@%s is not valid JSON", name, m.digest)
	}
	v := manifestView{Repo: name, Namespace: namespaceOf(name), Ref: ref, summary: summarize(m), MediaType: m.mediaType,
		RawSize: len(m.raw), Annotations: sortedKV(doc.Annotations), PullDigest: pullCommand(req.r, name, "@"+m.digest.String())}
	v.Raw = prettyJSON(m.raw)
	if !isDigest {
		v.Tag, v.Pull = ref, pullCommand(req.r, name, ":"+ref)
		if v.CanDelete, err = u.may(ctx, user, name, auth.ActionDelete); err != nil {
			return err
		}
	}
	if doc.Subject != nil {
		v.Subject = doc.Subject.Digest.String()
	}
	if v.Platforms, err = u.platforms(ctx, who, name, doc.Manifests); err != nil {
		return err
	}
	if doc.Config != nil {
		if err := u.fillConfig(req, name, doc, &v); err != nil {
			return err
		}
	}
	refs, err := u.api.referrers(ctx, who, name, m.digest)
	if err != nil {
		return err
	}
	for _, d := range refs {
		v.Referrers = append(v.Referrers, referrerRow{ArtifactType: d.ArtifactType, Digest: d.Digest.String(), Size: d.Size, Annotations: sortedKV(d.Annotations)})
	}
	return u.render(w, req, http.StatusOK, "manifest", v)
}

// platforms describes an index's entries, each with its image's size
// (config and layers) and creation time read from the child manifest and
// its config.
func (u *UI) platforms(ctx context.Context, who caller, name string, descs []ocispec.Descriptor) ([]platformRow, error) {
	rows := make([]platformRow, len(descs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, d := range descs {
		rows[i] = platformRow{Platform: platformOf(d), Digest: d.Digest.String(), Size: d.Size}
		if ref := d.Annotations[attestationRef]; ref != "" {
			rows[i].Note = ref + " for " + d.Annotations["vnd.docker.reference.digest"]
		}
		g.Go(func() error {
			child, err := u.api.manifest(gctx, who, name, d.Digest.String())
			if isStatus(err, http.StatusNotFound) {
				rows[i].Note = "manifest missing from this repository"
				return nil
			} else if err != nil {
				return err
			}
			sum := u.describe(gctx, who, name, child)
			rows[i].Size, rows[i].Created = sum.Size, sum.Created
			return nil
		})
	}
	return rows, g.Wait()
}

// fillConfig reads the image config for platform, creation time, settings
// and history, and lines the history up with the layers.
func (u *UI) fillConfig(req *request, name string, doc manifestDoc, v *manifestView) error {
	cv := &configView{Digest: doc.Config.Digest.String(), MediaType: doc.Config.MediaType}
	v.Config = cv
	var history []historyRow
	if isImageConfig(doc.Config.MediaType) {
		raw, err := u.api.blob(req.r.Context(), req.caller(), name, doc.Config.Digest)
		var ue *uiError
		switch {
		case errors.As(err, &ue) && ue.status == http.StatusNotFound:
			v.ConfigError = "the config blob is missing from storage"
		case err != nil:
			return err
		default:
			var c imageConfig
			if err := json.Unmarshal(raw, &c); err != nil {
				v.ConfigError = "the config is not valid JSON: " + err.Error()
				break
			}
			fillConfigView(cv, c)
			history = cv.History
		}
	} else {
		cv.NotImageType = true
	}
	var withLayer []historyRow
	for _, h := range history {
		if !h.Empty {
			withLayer = append(withLayer, h)
		}
	}
	for i, l := range doc.Layers {
		row := layerRow{Index: i + 1, MediaType: l.MediaType, Digest: l.Digest.String(), Size: l.Size}
		if len(withLayer) == len(doc.Layers) {
			row.CreatedBy = withLayer[i].CreatedBy
		}
		if len(cv.DiffIDs) == len(doc.Layers) {
			row.DiffID = cv.DiffIDs[i]
		}
		v.Layers = append(v.Layers, row)
	}
	return nil
}

func fillConfigView(cv *configView, c imageConfig) {
	cv.Created = formatTime(c.Created)
	cv.Author = c.Author
	if c.OS != "" {
		cv.Platform = platformString(c.OS, c.Architecture, c.Variant)
	}
	cv.User, cv.WorkingDir, cv.StopSignal = c.Config.User, c.Config.WorkingDir, c.Config.StopSignal
	cv.Entrypoint, cv.Cmd, cv.Env = c.Config.Entrypoint, c.Config.Cmd, c.Config.Env
	cv.Ports, cv.Volumes = sortedKeys(c.Config.ExposedPorts), sortedKeys(c.Config.Volumes)
	cv.Labels = sortedKV(c.Config.Labels)
	cv.DiffIDs = c.RootFS.DiffIDs
	for _, h := range c.History {
		cv.History = append(cv.History, historyRow{Created: formatTime(h.Created), CreatedBy: h.CreatedBy, Comment: h.Comment, Empty: h.EmptyLayer})
	}
}

// formatTime shows RFC 3339 times in UTC; anything else as written.
func formatTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
