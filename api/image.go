package api

import (
	"encoding/json"
	"fmt"
	"net/http"

	"berth/errdefs"
	"berth/image"

	imagetypes "github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
)

func (s *server) addImageRoutes() {
	s.handle(http.MethodGet, "/images/json", s.listImages)
	s.handle(http.MethodPost, "/images/create", s.createImage)
	s.handle(http.MethodPost, "/images/prune", s.pruneImages)
	s.handle(http.MethodGet, "/images/{name}/json", s.inspectImage)
	s.handle(http.MethodGet, "/images/{name}/history", s.imageHistory)
	s.handle(http.MethodPost, "/images/{name}/tag", s.tagImage)
	s.handle(http.MethodDelete, "/images/{name}", s.deleteImage)
}

func (s *server) listImages(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	// API < 1.41 clients pass a reference pattern as "filter".
	if f := q.Get("filter"); f != "" {
		filters["reference"] = append(filters["reference"], f)
	}
	imgs, err := s.opts.Images.Images(r.Context(), image.ListOptions{All: boolValue(q, "all"), Filters: filters})
	if err != nil {
		return err
	}
	if imgs == nil {
		imgs = []imagetypes.Summary{}
	}
	writeJSON(w, http.StatusOK, imgs)
	return nil
}

func (s *server) inspectImage(w http.ResponseWriter, r *http.Request, req request) error {
	img, err := s.opts.Images.ImageInspect(r.Context(), req.name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, img)
	return nil
}

func (s *server) imageHistory(w http.ResponseWriter, r *http.Request, req request) error {
	h, err := s.opts.Images.ImageHistory(r.Context(), req.name)
	if err != nil {
		return err
	}
	if h == nil {
		h = []imagetypes.HistoryResponseItem{}
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *server) tagImage(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	target := q.Get("repo")
	if target == "" {
		return fmt.Errorf("tag %s: repository name must have at least one component: %w", req.name, errdefs.ErrInvalidArgument)
	}
	if tag := q.Get("tag"); tag != "" {
		target += ":" + tag
	}
	if err := s.opts.Images.TagImage(r.Context(), req.name, target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *server) deleteImage(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	opts := image.DeleteOptions{Force: boolValue(q, "force"), NoPrune: boolValue(q, "noprune")}
	resp, err := s.opts.Images.ImageDelete(r.Context(), req.name, opts)
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []imagetypes.DeleteResponse{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// pruneImages removes dangling images, or every unused one when the filters
// say dangling=false: that is how `image prune -a` reaches the daemon.
func (s *server) pruneImages(w http.ResponseWriter, r *http.Request, _ request) error {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return err
	}
	all := false
	if d, ok := filters["dangling"]; ok {
		for _, v := range d {
			switch v {
			case "false", "0":
				all = true
			case "true", "1":
			default:
				return fmt.Errorf("dangling filter %q: must be true or false: %w", v, errdefs.ErrInvalidArgument)
			}
		}
		delete(filters, "dangling")
	}
	report, err := s.opts.Images.ImagesPrune(r.Context(), all, filters)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, report)
	return nil
}

// streamMessage is one line of a JSON-message stream. It adds the legacy
// top-level "error" string, which old clients read instead of errorDetail.
type streamMessage struct {
	jsonstream.Message
	ErrorMessage string `json:"error,omitempty"`
}

// createImage serves `docker import` (fromSrc=-: the request body is the
// rootfs tar). Like dockerd it answers with a JSON-message stream; nothing
// is written before the import ends, so an early failure is still a plain
// HTTP error with its own status.
func (s *server) createImage(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	src := q.Get("fromSrc")
	switch {
	case src == "" && q.Get("fromImage") != "":
		return s.pullImage(w, r, req)
	case src == "":
		return fmt.Errorf("create image: fromSrc or fromImage is required: %w", errdefs.ErrInvalidArgument)
	case src != "-":
		return fmt.Errorf("import %s: only fromSrc=- (the request body) is supported: %w", src, errdefs.ErrInvalidArgument)
	}
	ref := q.Get("repo")
	if tag := q.Get("tag"); tag != "" && ref != "" {
		ref += ":" + tag
	}
	id, err := s.opts.Images.ImportImage(r.Context(), r.Body, image.ImportOptions{
		Ref:      ref,
		Message:  q.Get("message"),
		Source:   src,
		Changes:  q["changes"],
		Platform: q.Get("platform"),
	})
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	return writeStream(w, streamMessage{Message: jsonstream.Message{Status: id}})
}

// writeStream writes messages the way dockerd frames them: one JSON object
// per line, "\r\n"-terminated.
func writeStream(w http.ResponseWriter, msgs ...streamMessage) error {
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if _, err := w.Write(append(b, '\r', '\n')); err != nil {
			return err
		}
	}
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	return nil
}
