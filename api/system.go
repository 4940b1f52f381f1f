package api

import (
	"net/http"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

func (s *server) addSystemRoutes() {
	s.handle(http.MethodGet, "/_ping", s.ping)
	s.handle(http.MethodHead, "/_ping", s.ping)
	s.handle(http.MethodGet, "/version", s.version)
	s.handle(http.MethodGet, "/info", s.info)
	s.handle(http.MethodGet, "/system/df", s.diskUsage)
}

func (s *server) ping(w http.ResponseWriter, r *http.Request, _ request) error {
	h := w.Header()
	h.Set("Builder-Version", string(build.BuilderV1))
	h.Set("Swarm", "inactive")
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	w.WriteHeader(http.StatusOK)
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *server) version(w http.ResponseWriter, _ *http.Request, _ request) error {
	writeJSON(w, http.StatusOK, s.versionResponse())
	return nil
}

func (s *server) versionResponse() system.VersionResponse {
	v := s.opts.Version
	engine := system.ComponentVersion{
		Name:    "Engine",
		Version: v.Version,
		Details: map[string]string{
			"ApiVersion":    APIVersion,
			"MinAPIVersion": MinAPIVersion,
			"GitCommit":     v.GitCommit,
			"GoVersion":     v.GoVersion,
			"Os":            v.Os,
			"Arch":          v.Arch,
			"KernelVersion": v.KernelVersion,
			"BuildTime":     v.BuildTime,
			"Experimental":  "false",
		},
	}
	return system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "berth"},
		Components:    append([]system.ComponentVersion{engine}, others(v.Components)...),
		Version:       v.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		GitCommit:     v.GitCommit,
		GoVersion:     v.GoVersion,
		Os:            v.Os,
		Arch:          v.Arch,
		KernelVersion: v.KernelVersion,
		BuildTime:     v.BuildTime,
	}
}

// others drops an "Engine" entry a caller may have passed: the handler
// describes the engine itself, from the versions it actually serves.
func others(cs []system.ComponentVersion) []system.ComponentVersion {
	var out []system.ComponentVersion
	for _, c := range cs {
		if c.Name != "Engine" {
			out = append(out, c)
		}
	}
	return out
}

func (s *server) info(w http.ResponseWriter, r *http.Request, _ request) error {
	info, err := s.opts.System.Info(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, info)
	return nil
}

// legacyDiskUsage is the /system/df body before API 1.52: flat item lists
// with LayersSize, from which clients compute the totals themselves.
type legacyDiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}

// diskUsage answers in the shape of API 1.51 and older, the newest this
// server speaks; the per-type totals of 1.52 arrive with that version.
func (s *server) diskUsage(w http.ResponseWriter, r *http.Request, _ request) error {
	du, err := s.opts.System.DiskUsage(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, toLegacyDiskUsage(du))
	return nil
}

// toLegacyDiskUsage always lists every item: old clients derive counts from
// the lists. Empty lists stay [] rather than null, as dockerd sends them.
func toLegacyDiskUsage(du system.DiskUsage) legacyDiskUsage {
	l := legacyDiskUsage{
		Images:     []image.Summary{},
		Containers: []container.Summary{},
		Volumes:    []volume.Volume{},
		BuildCache: []build.CacheRecord{},
	}
	if u := du.ImageUsage; u != nil {
		l.LayersSize = u.TotalSize
		l.Images = append(l.Images, u.Items...)
	}
	if u := du.ContainerUsage; u != nil {
		l.Containers = append(l.Containers, u.Items...)
	}
	if u := du.VolumeUsage; u != nil {
		l.Volumes = append(l.Volumes, u.Items...)
	}
	if u := du.BuildCacheUsage; u != nil {
		l.BuildCache = append(l.BuildCache, u.Items...)
	}
	return l
}
