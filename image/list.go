package image

import (
	"context"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"

	"berth/errdefs"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
)

func familiar(key string) string {
	ref, err := reference.ParseNormalizedNamed(key)
	if err != nil {
		return key
	}
	return reference.FamiliarString(ref)
}

// splitTags separates tag references from digest references, as the API's
// RepoTags and RepoDigests.
func splitTags(keys []string) (tags, digests []string) {
	sort.Strings(keys)
	tags, digests = []string{}, []string{}
	for _, k := range keys {
		if strings.Contains(k, "@") {
			digests = append(digests, familiar(k))
		} else {
			tags = append(tags, familiar(k))
		}
	}
	return tags, digests
}

// Images lists images as `docker images` does: one summary per image, newest
// first; intermediate images (untagged with children) only with All.
func (s *Service) Images(ctx context.Context, opts ListOptions) ([]imagetypes.Summary, error) {
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	f, err := newFilter(st, opts.Filters)
	if err != nil {
		return nil, err
	}
	out := []imagetypes.Summary{}
	for id, r := range st.images {
		keys := st.tagsOf(id)
		if !opts.All && len(keys) == 0 && len(st.children(id)) > 0 {
			continue
		}
		if !f.match(r, keys) {
			continue
		}
		tags, digests := splitTags(keys)
		if f.reference != nil {
			tags = f.matchingTags(tags)
		}
		out = append(out, imagetypes.Summary{
			ID: id.String(), ParentID: r.Parent.String(), RepoTags: tags, RepoDigests: digests,
			Created: unixOrZero(r.Created), Size: r.Size, SharedSize: -1, Containers: -1,
			Labels: nonNil(r.Labels),
		})
	}
	// Newest first, by the full-precision time: two images made in the
	// same second keep their real order.
	sort.Slice(out, func(i, j int) bool {
		ti, tj := st.images[digest.Digest(out[i].ID)].Created, st.images[digest.Digest(out[j].ID)].Created
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// unixOrZero keeps a config without a creation time at the epoch rather
// than at year 1, which clients would show as "292 years ago".
func unixOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

type filter struct {
	dangling      *bool
	reference     []string
	labels        []string
	before, since time.Time
}

func newFilter(st *state, in map[string][]string) (*filter, error) {
	f := &filter{}
	for key, vals := range in {
		switch key {
		case "dangling":
			for _, v := range vals {
				b, ok := map[string]bool{"true": true, "1": true, "false": false, "0": false}[strings.ToLower(v)]
				if !ok {
					return nil, fmt.Errorf("invalid filter 'dangling=%s': %w", v, errdefs.ErrInvalidArgument)
				}
				f.dangling = &b
			}
		case "reference":
			f.reference = vals
		case "label":
			f.labels = vals
		case "before", "since":
			for _, v := range vals {
				id, _, err := st.resolve(v)
				if err != nil {
					return nil, err
				}
				t := st.images[id].Created
				if key == "before" {
					f.before = t
				} else {
					f.since = t
				}
			}
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", key, errdefs.ErrInvalidArgument)
		}
	}
	return f, nil
}

func (f *filter) match(r record, keys []string) bool {
	if f.dangling != nil && *f.dangling != (len(keys) == 0) {
		return false
	}
	if f.reference != nil {
		tags, _ := splitTags(keys)
		if len(f.matchingTags(tags)) == 0 {
			return false
		}
	}
	for _, l := range f.labels {
		k, v, hasV := strings.Cut(l, "=")
		got, ok := r.Labels[k]
		if !ok || (hasV && got != v) {
			return false
		}
	}
	if !f.before.IsZero() && !r.Created.Before(f.before) {
		return false
	}
	if !f.since.IsZero() && !r.Created.After(f.since) {
		return false
	}
	return true
}

// matchingTags keeps the tags that match a reference pattern, tried against
// both the name alone and name:tag, as Docker does.
func (f *filter) matchingTags(tags []string) []string {
	var out []string
	for _, t := range tags {
		name := t
		if i := strings.LastIndex(t, ":"); i > strings.LastIndex(t, "/") {
			name = t[:i]
		}
		for _, pat := range f.reference {
			if ok, _ := path.Match(pat, t); ok {
				out = append(out, t)
				break
			}
			if ok, _ := path.Match(pat, name); ok {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

// ImageInspect returns Docker's inspect document for an image.
func (s *Service) ImageInspect(ctx context.Context, name string) (InspectResponse, error) {
	st, err := s.view()
	if err != nil {
		return InspectResponse{}, err
	}
	id, _, err := st.resolve(name)
	if err != nil {
		return InspectResponse{}, err
	}
	cfg, err := s.Config(ctx, id)
	if err != nil {
		return InspectResponse{}, err
	}
	r := st.images[id]
	tags, digests := splitTags(st.tagsOf(id))
	layers := make([]string, len(cfg.RootFS.DiffIDs))
	for i, d := range cfg.RootFS.DiffIDs {
		layers[i] = d.String()
	}
	created := ""
	if t := cfg.created(); !t.IsZero() {
		created = t.UTC().Format(time.RFC3339Nano)
	}
	return InspectResponse{
		InspectResponse: imagetypes.InspectResponse{
			ID: id.String(), RepoTags: tags, RepoDigests: digests,
			Comment: cfg.Comment, Created: created, Author: cfg.Author, Config: &cfg.Config,
			Architecture: cfg.Architecture, Variant: cfg.Variant,
			Os: cfg.OS, Size: r.Size, RootFS: imagetypes.RootFS{Type: cfg.RootFS.Type, Layers: layers},
			Metadata:    imagetypes.Metadata{LastTagTime: r.LastTagTime},
			GraphDriver: &storage.DriverData{Name: s.driver, Data: s.driverData(ctx, r)},
		},
		Parent: cfg.Parent, DockerVersion: cfg.DockerVersion,
		Container: cfg.Container, ContainerConfig: cfg.ContainerConfig,
	}, nil
}

func (s *Service) driverData(ctx context.Context, r record) map[string]string {
	if len(r.ChainIDs) == 0 {
		return map[string]string{}
	}
	return map[string]string{"Layer": r.ChainIDs[len(r.ChainIDs)-1].String()}
}

// ImageHistory lists an image's history, newest first, as `docker history`.
func (s *Service) ImageHistory(ctx context.Context, name string) ([]imagetypes.HistoryResponseItem, error) {
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	id, _, err := st.resolve(name)
	if err != nil {
		return nil, err
	}
	cfg, err := s.Config(ctx, id)
	if err != nil {
		return nil, err
	}
	owners := s.historyOwners(ctx, st, id, len(cfg.History))
	out := make([]imagetypes.HistoryResponseItem, 0, len(cfg.History))
	layer := 0
	for i, h := range cfg.History {
		var size int64
		if !h.EmptyLayer && layer < len(st.images[id].ChainIDs) {
			size = st.layers[st.images[id].ChainIDs[layer]].Size
			layer++
		}
		item := imagetypes.HistoryResponseItem{
			ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Size: size, Tags: []string{},
		}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if owner, ok := owners[i]; ok {
			item.ID = owner.String()
			item.Tags, _ = splitTags(st.tagsOf(owner))
		}
		out = append(out, item)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// historyOwners maps history indexes to the local images whose last entry
// they are: the image itself for the last one, its ancestors for theirs.
func (s *Service) historyOwners(ctx context.Context, st *state, id digest.Digest, n int) map[int]digest.Digest {
	owners := map[int]digest.Digest{}
	if n == 0 {
		return owners
	}
	owners[n-1] = id
	for p := st.images[id].Parent; p != ""; p = st.images[p].Parent {
		if _, ok := st.images[p]; !ok {
			break
		}
		cfg, err := s.Config(ctx, p)
		if err != nil || len(cfg.History) == 0 || len(cfg.History) > n {
			break
		}
		owners[len(cfg.History)-1] = p
	}
	return owners
}
