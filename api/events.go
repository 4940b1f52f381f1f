package api

import (
	"encoding/json"
	"net/http"

	"berth/errdefs"

	"github.com/moby/moby/api/types/events"
)

func (s *server) addEventRoutes() {
	s.handle(http.MethodGet, "/events", s.streamEvents)
}

// eventFilters are the filter keys dockerd accepts on /events.
var eventFilters = map[string]bool{
	"config": true, "container": true, "daemon": true, "event": true, "image": true, "label": true,
	"network": true, "node": true, "plugin": true, "scope": true, "secret": true, "service": true,
	"type": true, "volume": true,
}

// legacyEvent is an event as API 1.51 and older send it: with the status,
// id and from fields of the pre-1.22 format, which dockerd kept filling
// for container and image events until 1.52.
type legacyEvent struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

func toLegacyEvent(m events.Message) legacyEvent {
	e := legacyEvent{Message: m}
	switch m.Type {
	case events.ContainerEventType:
		e.Status, e.ID, e.From = string(m.Action), m.Actor.ID, m.Actor.Attributes["image"]
	case events.ImageEventType:
		e.Status, e.ID = string(m.Action), m.Actor.ID
	}
	return e
}

// streamEvents writes the recorded events in [since, until], then, unless
// until has passed, live events as they happen, one JSON object per line.
// The status line goes out first so `docker events` knows it is listening.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request, _ request) error {
	q := r.URL.Query()
	since, err := parseUnixTime(q.Get("since"))
	if err != nil {
		return err
	}
	until, err := parseUnixTime(q.Get("until"))
	if err != nil {
		return err
	}
	if !since.IsZero() && !until.IsZero() && until.Before(since) {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "`since` time (%s) cannot be after `until` time (%s)", q.Get("since"), q.Get("until"))
	}
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		return err
	}
	for key := range filters {
		if !eventFilters[key] {
			return errdefs.Errorf(errdefs.ErrInvalidArgument, "invalid filter '%s'", key)
		}
	}
	past, live, err := s.opts.Events.Events(r.Context(), since, until, filters)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, m := range past {
		if err := enc.Encode(toLegacyEvent(m)); err != nil {
			return nil // the client left
		}
	}
	flush(w)
	if live == nil {
		return nil
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return nil
			}
			if err := enc.Encode(toLegacyEvent(m)); err != nil {
				return nil
			}
			flush(w)
		case <-r.Context().Done():
			return nil
		}
	}
}
