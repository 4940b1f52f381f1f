package server

import (
	"net/http"
	"strings"

	"github.com/opencontainers/go-digest"

	"berth/registry/auth"
	"berth/registry/notify"
)

// EventSink receives the registry's events; notify.Notifier is the
// implementation. Notify must not block.
type EventSink interface {
	Notify(events ...notify.Event)
}

// Media type of blob targets, as the CNCF registry reports them.
const blobMediaType = "application/octet-stream"

// emit sends events caused by r, filling in the request and the actor.
// Called only once the request's change is committed (or its read served).
func (s *Server) emit(r *http.Request, action string, targets ...notify.Target) {
	if s.events == nil || len(targets) == 0 {
		return
	}
	req := notify.Request{ID: r.Header.Get("X-Request-Id"), Addr: clientAddr(r), Host: r.Host, Method: r.Method, UserAgent: r.UserAgent()}
	if req.ID == "" {
		req.ID = notify.NewID()
	}
	var actor notify.Actor
	if id, ok := s.auth.(auth.Identifier); ok {
		actor.Name = id.Identity(r)
	}
	evs := make([]notify.Event, len(targets))
	for i, t := range targets {
		evs[i] = notify.Event{Action: action, Target: t, Request: req, Actor: actor}
	}
	s.events.Notify(evs...)
}

// clientAddr is the client's address: the first X-Forwarded-For hop when a
// balancer sent one (informational only, never used to authorize).
func clientAddr(r *http.Request) string {
	if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
		first, _, _ := strings.Cut(xff, ",")
		return strings.TrimSpace(first)
	}
	return r.RemoteAddr
}

// targetURL is the absolute URL of a manifest or blob, as the client
// addressed the registry.
func targetURL(r *http.Request, name, kind string, d digest.Digest) string {
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/v2/" + name + "/" + kind + "/" + d.String()
}

func blobEvent(r *http.Request, name string, d digest.Digest, size int64) notify.Target {
	return notify.Target{MediaType: blobMediaType, Size: size, Digest: d, Repository: name, URL: targetURL(r, name, "blobs", d)}
}

func manifestEvent(r *http.Request, name string, d digest.Digest, mt string, size int64, tag string) notify.Target {
	return notify.Target{MediaType: mt, Size: size, Digest: d, Repository: name, URL: targetURL(r, name, "manifests", d), Tag: tag}
}
