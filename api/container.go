package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	berthcontainer "berth/container"
	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func (s *server) addContainerRoutes() {
	s.handle(http.MethodPost, "/containers/create", s.createContainer)
	s.handle(http.MethodGet, "/containers/json", s.listContainers)
	s.handle(http.MethodPost, "/containers/prune", s.pruneContainers)
	s.handle(http.MethodGet, "/containers/{name}/json", s.inspectContainer)
	s.handle(http.MethodPost, "/containers/{name}/start", s.startContainer)
	s.handle(http.MethodPost, "/containers/{name}/stop", s.stopContainer)
	s.handle(http.MethodPost, "/containers/{name}/restart", s.restartContainer)
	s.handle(http.MethodPost, "/containers/{name}/kill", s.killContainer)
	s.handle(http.MethodPost, "/containers/{name}/pause", s.pauseContainer)
	s.handle(http.MethodPost, "/containers/{name}/unpause", s.unpauseContainer)
	s.handle(http.MethodPost, "/containers/{name}/wait", s.waitContainer)
	s.handle(http.MethodPost, "/containers/{name}/rename", s.renameContainer)
	s.handle(http.MethodPost, "/containers/{name}/resize", s.resizeContainer)
	s.handle(http.MethodPost, "/containers/{name}/attach", s.attachContainer)
	s.handle(http.MethodGet, "/containers/{name}/top", s.topContainer)
	s.handle(http.MethodGet, "/containers/{name}/stats", s.containerStats)
	s.handle(http.MethodGet, "/containers/{name}/logs", s.containerLogs)
	s.handle(http.MethodGet, "/containers/{name}/changes", s.containerChanges)
	s.handle(http.MethodGet, "/containers/{name}/export", s.exportContainer)
	s.handle(http.MethodHead, "/containers/{name}/archive", s.statContainerPath)
	s.handle(http.MethodGet, "/containers/{name}/archive", s.getContainerArchive)
	s.handle(http.MethodPut, "/containers/{name}/archive", s.putContainerArchive)
	s.handle(http.MethodDelete, "/containers/{name}", s.removeContainer)
}

func (s *server) createContainer(w http.ResponseWriter, r *http.Request, _ request) error {
	var body container.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "config cannot be empty in order to create a container")
		}
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid JSON: %s", err.Error())
	}
	if body.Config == nil {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "config cannot be empty in order to create a container")
	}
	q := r.URL.Query()
	platform, err := parsePlatform(q.Get("platform"))
	if err != nil {
		return err
	}
	resp, err := s.opts.Containers.ContainerCreate(r.Context(), berthcontainer.CreateOptions{
		Name:             q.Get("name"),
		Config:           body.Config,
		HostConfig:       body.HostConfig,
		NetworkingConfig: body.NetworkingConfig,
		Platform:         platform,
	})
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

// parsePlatform reads "os[/arch[/variant]]"; empty means the daemon's own.
func parsePlatform(s string) (*ocispec.Platform, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 || parts[0] == "" {
		return nil, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid platform %q: expected os[/arch[/variant]]", s)
	}
	p := &ocispec.Platform{OS: strings.ToLower(parts[0])}
	if len(parts) > 1 {
		p.Architecture = strings.ToLower(parts[1])
	}
	if len(parts) > 2 {
		p.Variant = strings.ToLower(parts[2])
	}
	return p, nil
}

func (s *server) listContainers(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	// Clients before API 1.41 could pass these as parameters.
	for _, key := range []string{"since", "before"} {
		if v := q.Get(key); v != "" {
			filters[key] = append(filters[key], v)
		}
	}
	opts := berthcontainer.ListOptions{All: boolValue(q, "all"), Size: boolValue(q, "size"), Limit: -1, Filters: filters}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid limit %q: %s", v, err.Error())
		}
		if n > 0 {
			opts.Limit = n
		}
	}
	list, err := s.opts.Containers.ContainerList(r.Context(), opts)
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *server) inspectContainer(w http.ResponseWriter, r *http.Request, req request) error {
	doc, err := s.opts.Containers.ContainerInspect(r.Context(), req.name, boolValue(r.URL.Query(), "size"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, legacyInspect(doc))
	return nil
}

func (s *server) startContainer(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.opts.Containers.ContainerStart(r.Context(), req.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// stopOptions reads ?signal= and ?t= (seconds; -1 waits for ever).
func stopOptions(q url.Values) (berthcontainer.StopOptions, error) {
	opts := berthcontainer.StopOptions{Signal: q.Get("signal")}
	if v := q.Get("t"); v != "" {
		t, err := strconv.Atoi(v)
		if err != nil {
			return opts, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid value for t %q: %s", v, err.Error())
		}
		opts.Timeout = &t
	}
	return opts, nil
}

func (s *server) stopContainer(w http.ResponseWriter, r *http.Request, req request) error {
	opts, err := stopOptions(r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.opts.Containers.ContainerStop(r.Context(), req.name, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) restartContainer(w http.ResponseWriter, r *http.Request, req request) error {
	opts, err := stopOptions(r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.opts.Containers.ContainerRestart(r.Context(), req.name, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) killContainer(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.opts.Containers.ContainerKill(r.Context(), req.name, r.URL.Query().Get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) pauseContainer(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.opts.Containers.ContainerPause(r.Context(), req.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) unpauseContainer(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.opts.Containers.ContainerUnpause(r.Context(), req.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) removeContainer(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	if boolValue(q, "link") {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "legacy container links are not supported: cannot remove link %s", req.name)
	}
	opts := berthcontainer.RemoveOptions{Force: boolValue(q, "force"), RemoveVolumes: boolValue(q, "v")}
	if err := s.opts.Containers.ContainerRemove(r.Context(), req.name, opts); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) renameContainer(w http.ResponseWriter, r *http.Request, req request) error {
	name := r.URL.Query().Get("name")
	if name == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "Neither old nor new names may be empty")
	}
	if err := s.opts.Containers.ContainerRename(r.Context(), req.name, name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// terminalSize reads ?h= and ?w=, as resize sends them.
func terminalSize(q url.Values) (uint, uint, error) {
	h, err1 := strconv.ParseUint(q.Get("h"), 10, 16)
	wd, err2 := strconv.ParseUint(q.Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid terminal size h=%q w=%q", q.Get("h"), q.Get("w"))
	}
	return uint(h), uint(wd), nil
}

func (s *server) resizeContainer(w http.ResponseWriter, r *http.Request, req request) error {
	h, wd, err := terminalSize(r.URL.Query())
	if err != nil {
		return err
	}
	if err := s.opts.Containers.ContainerResize(r.Context(), req.name, h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *server) topContainer(w http.ResponseWriter, r *http.Request, req request) error {
	top, err := s.opts.Containers.ContainerTop(r.Context(), req.name, r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, top)
	return nil
}

func (s *server) containerChanges(w http.ResponseWriter, r *http.Request, req request) error {
	changes, err := s.opts.Containers.ContainerChanges(r.Context(), req.name)
	if err != nil {
		return err
	}
	if changes == nil {
		changes = []container.FilesystemChange{}
	}
	writeJSON(w, http.StatusOK, changes)
	return nil
}

func (s *server) pruneContainers(w http.ResponseWriter, r *http.Request, _ request) error {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	report, err := s.opts.Containers.ContainersPrune(r.Context(), filters)
	if err != nil {
		return err
	}
	if report.ContainersDeleted == nil {
		report.ContainersDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}

func invalidCondition(c string) error {
	return fmt.Errorf("wait condition %q: must be one of not-running, next-exit or removed: %w", c, errdefs.ErrInvalidArgument)
}
