package apitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"slices"

	"berth/errdefs"
	"berth/image"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
)

// ImageDelete untags a tag reference, and deletes the image once no tag is
// left; an id reference with several tags needs force, as in dockerd.
func (s *Images) ImageDelete(_ context.Context, ref string, opts image.DeleteOptions) ([]imagetypes.DeleteResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, byTag, err := s.find(ref)
	if err != nil {
		return nil, err
	}
	var resp []imagetypes.DeleteResponse
	switch {
	case byTag:
		tag := normalizeTag(ref)
		img.Summary.RepoTags = slices.DeleteFunc(img.Summary.RepoTags, func(t string) bool { return t == tag })
		resp = append(resp, imagetypes.DeleteResponse{Untagged: tag})
		if len(img.Summary.RepoTags) > 0 {
			return resp, nil
		}
	case len(img.Summary.RepoTags) > 1 && !opts.Force:
		return nil, errdefs.Errorf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(img.Summary.ID))
	default:
		for _, t := range img.Summary.RepoTags {
			resp = append(resp, imagetypes.DeleteResponse{Untagged: t})
		}
	}
	s.remove(img)
	return append(resp, imagetypes.DeleteResponse{Deleted: img.Summary.ID}), nil
}

func (s *Images) remove(img *Image) {
	s.images = slices.DeleteFunc(s.images, func(i *Image) bool { return i == img })
}

func shortID(id string) string {
	h := id[len("sha256:"):]
	return h[:min(12, len(h))]
}

// ImagesPrune deletes dangling images, or all images when all is set.
func (s *Images) ImagesPrune(_ context.Context, all bool, filters map[string][]string) (imagetypes.PruneReport, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var report imagetypes.PruneReport
	for _, img := range slices.Clone(s.images) {
		if !all && len(img.Summary.RepoTags) > 0 {
			continue
		}
		ok, err := matches(img.Summary, filters)
		if err != nil {
			return imagetypes.PruneReport{}, err
		}
		if !ok {
			continue
		}
		for _, t := range img.Summary.RepoTags {
			report.ImagesDeleted = append(report.ImagesDeleted, imagetypes.DeleteResponse{Untagged: t})
		}
		report.ImagesDeleted = append(report.ImagesDeleted, imagetypes.DeleteResponse{Deleted: img.Summary.ID})
		report.SpaceReclaimed += uint64(img.Summary.Size)
		s.remove(img)
	}
	return report, nil
}

// ImportImage stores the tar as a one-layer image whose id is the sha256
// of the bytes received.
func (s *Images) ImportImage(ctx context.Context, src io.Reader, opts image.ImportOptions) (string, error) {
	h := sha256.New()
	n, err := io.Copy(h, src)
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", errdefs.Errorf(errdefs.ErrInvalidArgument, "import: empty archive")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Imports = append(s.Imports, opts)
	id := "sha256:" + hex.EncodeToString(h.Sum(nil))
	if img, _, err := s.find(id); err == nil {
		if opts.Ref != "" {
			s.tag(img, normalizeTag(opts.Ref))
		}
		return id, nil
	}
	created := s.now()
	comment := opts.Message
	if comment == "" {
		comment = "Imported from " + opts.Source
	}
	img := &Image{
		Summary: imagetypes.Summary{ID: id, Created: created.Unix(), Size: n, RepoTags: []string{}, RepoDigests: []string{}, Containers: -1, SharedSize: -1},
		History: []imagetypes.HistoryResponseItem{{ID: id, Created: created.Unix(), Size: n, Comment: comment}},
	}
	s.images = append(s.images, img)
	if opts.Ref != "" {
		s.tag(img, normalizeTag(opts.Ref))
	}
	return id, nil
}

// System is an in-memory SystemBackend whose disk usage is derived from
// Images.
type System struct {
	Images  *Images
	InfoDoc system.Info
}

// Info returns InfoDoc with the image count filled in.
func (s *System) Info(context.Context) (system.Info, error) {
	info := s.InfoDoc
	s.Images.mu.Lock()
	info.Images = len(s.Images.images)
	s.Images.mu.Unlock()
	return info, nil
}

// DiskUsage reports every image as reclaimable: no containers exist here.
func (s *System) DiskUsage(context.Context) (system.DiskUsage, error) {
	s.Images.mu.Lock()
	defer s.Images.mu.Unlock()
	u := &imagetypes.DiskUsage{TotalCount: int64(len(s.Images.images))}
	for _, img := range s.Images.images {
		u.TotalSize += img.Summary.Size
		// /system/df computes what /images/json leaves at -1.
		sum := img.Summary
		sum.Containers, sum.SharedSize = 0, 0
		u.Items = append(u.Items, sum)
	}
	u.Reclaimable = u.TotalSize
	return system.DiskUsage{ImageUsage: u}, nil
}
