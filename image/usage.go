package image

import (
	"context"
	"strings"

	"berth/snapshot"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
)

// DiskUsage reports the images' share of `system df`: each image's size
// and the part of it shared with other images.
func (s *Service) DiskUsage(ctx context.Context) (*imagetypes.DiskUsage, error) {
	list, err := s.Images(ctx, ListOptions{All: true})
	if err != nil {
		return nil, err
	}
	st, err := s.view()
	if err != nil {
		return nil, err
	}
	users := st.layerUsers()
	du := &imagetypes.DiskUsage{Items: list, TotalCount: int64(len(list))}
	for c, l := range st.layers {
		du.TotalSize += l.Size
		if users[c] == 0 {
			du.Reclaimable += l.Size
		}
	}
	for i := range du.Items {
		id := digest.Digest(du.Items[i].ID)
		var shared int64
		for _, c := range st.images[id].ChainIDs {
			if users[c] > 1 {
				shared += st.layers[c].Size
			}
		}
		du.Items[i].SharedSize = shared
		ctrs, _ := s.users(ctx, id)
		du.Items[i].Containers = int64(len(ctrs))
		if len(ctrs) > 0 {
			du.ActiveCount++
		} else {
			du.Reclaimable += du.Items[i].Size - shared
		}
	}
	return du, nil
}

// Cleanup removes what an interrupted import, load or pull left behind:
// Active snapshots of half-extracted layers, and committed layer snapshots
// that no record names. Called at daemon start, before serving.
func (s *Service) Cleanup(ctx context.Context) error {
	s.layerMu.Lock()
	defer s.layerMu.Unlock()
	st, err := s.view()
	if err != nil {
		return err
	}
	var stray []snapshot.Info
	err = s.sn.Walk(ctx, func(ctx context.Context, info snapshot.Info) error {
		switch {
		case info.Kind == snapshot.KindActive && strings.HasPrefix(info.Name, "extract-"):
			stray = append(stray, info)
		case info.Kind == snapshot.KindCommitted:
			if _, ok := st.layers[digest.Digest(info.Name)]; !ok {
				stray = append(stray, info)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Children go before parents; a snapshot something still builds on
	// refuses removal and stays.
	for progress := true; progress && len(stray) > 0; {
		progress = false
		rest := stray[:0]
		for _, info := range stray {
			if err := s.sn.Remove(ctx, info.Name); err != nil {
				rest = append(rest, info)
				continue
			}
			s.log.Info("removed stray snapshot", "key", info.Name)
			progress = true
		}
		stray = rest
	}
	return nil
}
