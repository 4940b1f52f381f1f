package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"berth/errdefs"

	"github.com/moby/moby/api/types/network"
)

// NetworkBackend is what the /networks routes need. Connect and disconnect
// receive the container as the user named it (name, id or id prefix); the
// implementation resolves it.
type NetworkBackend interface {
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	// NetworkList filters by driver, id, label, name, scope, type and
	// dangling; results are sorted by name.
	NetworkList(ctx context.Context, filters map[string][]string) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, ref string) (network.Inspect, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworksPrune(ctx context.Context, filters map[string][]string) (network.PruneReport, error)
	NetworkConnect(ctx context.Context, ref, container string, cfg *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, ref, container string, force bool) error
}

func (s *server) addNetworkRoutes() {
	s.handle(http.MethodGet, "/networks", s.listNetworks)
	s.handle(http.MethodGet, "/networks/", s.listNetworks)
	s.handle(http.MethodPost, "/networks/create", s.createNetwork)
	s.handle(http.MethodPost, "/networks/prune", s.pruneNetworks)
	s.handle(http.MethodGet, "/networks/{name}", s.inspectNetwork)
	s.handle(http.MethodDelete, "/networks/{name}", s.removeNetwork)
	s.handle(http.MethodPost, "/networks/{name}/connect", s.connectNetwork)
	s.handle(http.MethodPost, "/networks/{name}/disconnect", s.disconnectNetwork)
}

func (s *server) listNetworks(w http.ResponseWriter, r *http.Request, _ request) error {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	list, err := s.opts.Networks.NetworkList(r.Context(), filters)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

// inspectNetwork answers only for local networks: a scope other than
// "local" finds nothing, as on a daemon outside a swarm.
func (s *server) inspectNetwork(w http.ResponseWriter, r *http.Request, req request) error {
	if scope := r.URL.Query().Get("scope"); scope != "" && scope != "local" {
		return errdefs.Errorf(errdefs.ErrNotFound, "network %s not found", req.name)
	}
	doc, err := s.opts.Networks.NetworkInspect(r.Context(), req.name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, doc)
	return nil
}

func (s *server) createNetwork(w http.ResponseWriter, r *http.Request, _ request) error {
	var body network.CreateRequest
	if err := decodeNetworkBody(r, &body); err != nil {
		return err
	}
	resp, err := s.opts.Networks.NetworkCreate(r.Context(), body)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, resp)
	return nil
}

func (s *server) removeNetwork(w http.ResponseWriter, r *http.Request, req request) error {
	if err := s.opts.Networks.NetworkRemove(r.Context(), req.name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) pruneNetworks(w http.ResponseWriter, r *http.Request, _ request) error {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	report, err := s.opts.Networks.NetworksPrune(r.Context(), filters)
	if err != nil {
		return err
	}
	if report.NetworksDeleted == nil {
		report.NetworksDeleted = []string{}
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}

func (s *server) connectNetwork(w http.ResponseWriter, r *http.Request, req request) error {
	var body network.ConnectRequest
	if err := decodeNetworkBody(r, &body); err != nil {
		return err
	}
	if body.Container == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "container name or ID is required")
	}
	if err := s.opts.Networks.NetworkConnect(r.Context(), req.name, body.Container, body.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *server) disconnectNetwork(w http.ResponseWriter, r *http.Request, req request) error {
	var body network.DisconnectRequest
	if err := decodeNetworkBody(r, &body); err != nil {
		return err
	}
	if body.Container == "" {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "container name or ID is required")
	}
	if err := s.opts.Networks.NetworkDisconnect(r.Context(), req.name, body.Container, body.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// decodeNetworkBody reads a JSON body; an empty one is an error, as every
// network route that has a body needs it.
func decodeNetworkBody(r *http.Request, v any) error {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		if errors.Is(err, io.EOF) {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "request body is empty")
		}
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid JSON: %s", err.Error())
	}
	return nil
}
