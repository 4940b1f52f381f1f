package api

import (
	"context"
	"net/http"

	"berth/errdefs"

	"github.com/moby/moby/api/types/volume"
)

// VolumeBackend is what the /volumes routes need.
type VolumeBackend interface {
	// VolumeCreate returns the existing volume when the name is taken;
	// an empty name makes an anonymous volume.
	VolumeCreate(ctx context.Context, req volume.CreateRequest) (volume.Volume, error)
	VolumeInspect(ctx context.Context, name string) (volume.Volume, error)
	// VolumeList filters by name, driver, label and dangling.
	VolumeList(ctx context.Context, filters map[string][]string) ([]volume.Volume, error)
	// VolumeRemove refuses a volume in use; force ignores a missing one.
	VolumeRemove(ctx context.Context, name string, force bool) error
	// VolumesPrune removes unused anonymous volumes, or all unused ones
	// with the filter all=true; label and label! narrow it.
	VolumesPrune(ctx context.Context, filters map[string][]string) (volume.PruneReport, error)
}

func (s *server) addVolumeRoutes() {
	s.handle(http.MethodGet, "/volumes", s.listVolumes)
	s.handle(http.MethodPost, "/volumes/create", s.createVolume)
	s.handle(http.MethodPost, "/volumes/prune", s.pruneVolumes)
	s.handle(http.MethodGet, "/volumes/{name}", s.inspectVolume)
	s.handle(http.MethodPut, "/volumes/{name}", s.updateVolume)
	s.handle(http.MethodDelete, "/volumes/{name}", s.removeVolume)
}

func (s *server) listVolumes(w http.ResponseWriter, r *http.Request, _ request) error {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	list, err := s.opts.Volumes.VolumeList(r.Context(), filters)
	if err != nil {
		return err
	}
	if list == nil {
		list = []volume.Volume{}
	}
	writeJSON(w, http.StatusOK, volume.ListResponse{Volumes: list})
	return nil
}

func (s *server) createVolume(w http.ResponseWriter, r *http.Request, _ request) error {
	var body volume.CreateRequest
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	v, err := s.opts.Volumes.VolumeCreate(r.Context(), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *server) inspectVolume(w http.ResponseWriter, r *http.Request, req request) error {
	v, err := s.opts.Volumes.VolumeInspect(r.Context(), req.name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// updateVolume exists only for cluster volumes, which need a swarm.
func (s *server) updateVolume(http.ResponseWriter, *http.Request, request) error {
	return errdefs.Errorf(errdefs.ErrUnavailable, `This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to connect this node to swarm and try again.`)
}

func (s *server) removeVolume(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.opts.Volumes.VolumeRemove(r.Context(), req.name, boolValue(r.URL.Query(), "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// pruneVolumes: before API 1.42 prune removed every unused volume, named
// ones too; newer clients ask for that with all=true.
func (s *server) pruneVolumes(w http.ResponseWriter, r *http.Request, req request) error {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	if filters == nil {
		filters = map[string][]string{}
	}
	if _, ok := filters["all"]; !ok && compareVersions(req.version, "1.42") < 0 {
		filters["all"] = []string{"true"}
	}
	report, err := s.opts.Volumes.VolumesPrune(r.Context(), filters)
	if err != nil {
		return err
	}
	if report.VolumesDeleted == nil {
		report.VolumesDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}
