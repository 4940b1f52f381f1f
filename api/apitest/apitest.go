// Package apitest provides in-memory backends for testing the Engine API
// handler and the clients that talk to it. They follow the semantics of the
// real image service closely enough for wire and output tests (lookup by
// tag, full or short id; untag-then-delete; dangling prune) and keep
// everything in memory.
package apitest

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"berth/errdefs"
	"berth/image"

	"github.com/distribution/reference"
	imagetypes "github.com/moby/moby/api/types/image"
)

// Image is one stored image: its list entry, inspect document and history.
// Summary.RepoTags is the source of truth for tags.
type Image struct {
	Summary imagetypes.Summary
	Inspect image.InspectResponse
	History []imagetypes.HistoryResponseItem
}

// Images is an in-memory ImageBackend. Set Now to control import times.
type Images struct {
	mu     sync.Mutex
	images []*Image
	now    func() time.Time
	// Imports records the options of every ImportImage call.
	Imports []image.ImportOptions
}

// NewImages returns a store holding imgs; now stamps imported images.
func NewImages(now func() time.Time, imgs ...Image) *Images {
	s := &Images{now: now}
	for i := range imgs {
		img := imgs[i]
		s.images = append(s.images, &img)
	}
	return s
}

// normalizeTag turns "busybox" and "docker.io/library/busybox" into
// "busybox:latest", as the daemon names tags; digests keep their form.
func normalizeTag(ref string) string {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ref
	}
	if _, digested := named.(reference.Digested); digested {
		return reference.FamiliarString(named)
	}
	return reference.FamiliarString(reference.TagNameOnly(named))
}

func (s *Images) find(ref string) (*Image, bool, error) {
	tag := normalizeTag(ref)
	for _, img := range s.images {
		if slices.Contains(img.Summary.RepoTags, tag) {
			return img, true, nil
		}
	}
	hexRef := strings.TrimPrefix(ref, "sha256:")
	if len(hexRef) > 0 && strings.Trim(hexRef, "0123456789abcdef") == "" {
		for _, img := range s.images {
			if strings.HasPrefix(strings.TrimPrefix(img.Summary.ID, "sha256:"), hexRef) {
				return img, false, nil
			}
		}
	}
	return nil, false, errdefs.Errorf(errdefs.ErrNotFound, "No such image: %s", ref)
}

// Images lists images filtered by dangling, reference and label.
func (s *Images) Images(_ context.Context, opts image.ListOptions) ([]imagetypes.Summary, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []imagetypes.Summary
	for _, img := range s.images {
		ok, err := matches(img.Summary, opts.Filters)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, trimToReference(img.Summary, opts.Filters["reference"]))
		}
	}
	return out, nil
}

func matches(sum imagetypes.Summary, filters map[string][]string) (bool, error) {
	for key, vals := range filters {
		for _, v := range vals {
			var ok bool
			switch key {
			case "dangling":
				ok = (len(sum.RepoTags) == 0) == (v == "true" || v == "1")
			case "reference":
				ok = slices.ContainsFunc(sum.RepoTags, func(t string) bool { return tagMatches(v, t) })
			case "label":
				k, want, hasValue := strings.Cut(v, "=")
				got, present := sum.Labels[k]
				ok = present && (!hasValue || got == want)
			default:
				return false, fmt.Errorf("filter %q: %w", key, errdefs.ErrInvalidArgument)
			}
			if !ok {
				return false, nil
			}
		}
	}
	return true, nil
}

// trimToReference keeps only the tags a reference filter matched, as
// dockerd lists them.
func trimToReference(sum imagetypes.Summary, patterns []string) imagetypes.Summary {
	if len(patterns) == 0 {
		return sum
	}
	sum.RepoTags = slices.DeleteFunc(slices.Clone(sum.RepoTags), func(t string) bool {
		return !slices.ContainsFunc(patterns, func(p string) bool { return tagMatches(p, t) })
	})
	sum.RepoDigests = slices.DeleteFunc(slices.Clone(sum.RepoDigests), func(d string) bool {
		repo, _, _ := strings.Cut(d, "@")
		return !slices.ContainsFunc(patterns, func(p string) bool { m, _ := path.Match(p, repo); return m })
	})
	return sum
}

func tagMatches(pattern, tag string) bool {
	repo, _, _ := strings.Cut(tag, ":")
	if i := strings.LastIndex(tag, ":"); i > strings.LastIndex(tag, "/") {
		repo = tag[:i]
	}
	m1, _ := path.Match(pattern, tag)
	m2, _ := path.Match(pattern, repo)
	return m1 || m2
}

// ImageInspect returns the stored inspect document with the current tags.
func (s *Images) ImageInspect(_ context.Context, ref string) (image.InspectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.find(ref)
	if err != nil {
		return image.InspectResponse{}, err
	}
	resp := img.Inspect
	resp.ID = img.Summary.ID
	resp.RepoTags = slices.Clone(img.Summary.RepoTags)
	return resp, nil
}

// ImageHistory returns the stored history.
func (s *Images) ImageHistory(_ context.Context, ref string) ([]imagetypes.HistoryResponseItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.find(ref)
	if err != nil {
		return nil, err
	}
	return slices.Clone(img.History), nil
}

// TagImage moves target to the image source names.
func (s *Images) TagImage(_ context.Context, source, target string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.find(source)
	if err != nil {
		return err
	}
	s.tag(img, normalizeTag(target))
	return nil
}

func (s *Images) tag(img *Image, target string) {
	for _, other := range s.images {
		other.Summary.RepoTags = slices.DeleteFunc(other.Summary.RepoTags, func(t string) bool { return t == target })
	}
	img.Summary.RepoTags = append(img.Summary.RepoTags, target)
}

// List returns every stored image's summary, for assertions.
func (s *Images) List() []imagetypes.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]imagetypes.Summary, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.Summary)
	}
	return out
}
