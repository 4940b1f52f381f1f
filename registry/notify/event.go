// Package notify delivers the registry's events (pushes, pulls, mounts and
// deletes) to webhook endpoints, as the CNCF registry's notifications do:
// each endpoint receives POSTs of an envelope
//
//	{"events": [{"id", "timestamp", "action", "target": {"mediaType",
//	  "size", "digest", "length", "repository", "fromRepository", "url",
//	  "tag"}, "request": {"id", "addr", "host", "method", "useragent"},
//	  "actor": {"name"}, "source": {"addr", "instanceID"}}, ...]}
//
// with Content-Type application/vnd.docker.distribution.events.v1+json.
//
// Delivery is asynchronous: Notify puts events on each endpoint's bounded
// in-memory queue and returns at once, so a request never waits for a
// webhook. One goroutine per endpoint sends what is queued, up to
// maxBatch events per envelope, in order. A failed POST (network error,
// timeout, 408, 429 or 5xx) is retried with exponential backoff, for as long
// as it takes, holding the queue behind it: an endpoint that is down loses
// nothing until its queue is full. A full queue drops new events, counted
// and logged once per episode. A 4xx other than 408 and 429 says the
// endpoint will never take the envelope: its events are counted as rejected
// and delivery goes on. Events still queued when the process stops are
// lost beyond what Close delivers before its deadline.
package notify

import (
	"crypto/rand"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
)

// EventsMediaType is the envelope's content type.
const EventsMediaType = "application/vnd.docker.distribution.events.v1+json"

// Actions.
const (
	ActionPush   = "push"
	ActionPull   = "pull"
	ActionMount  = "mount"
	ActionDelete = "delete"
)

// Envelope is the body of a webhook POST.
type Envelope struct {
	Events []Event `json:"events"`
}

// Event is one thing that happened in the registry.
type Event struct {
	ID        string    `json:"id"`
	Timestamp time.Time `json:"timestamp"`
	Action    string    `json:"action"`
	Target    Target    `json:"target"`
	Request   Request   `json:"request"`
	Actor     Actor     `json:"actor"`
	Source    Source    `json:"source"`
}

// Target is what the event is about: a manifest, a blob, a tag or a whole
// repository (only Repository set).
type Target struct {
	MediaType string        `json:"mediaType,omitempty"`
	Size      int64         `json:"size,omitempty"`
	Digest    digest.Digest `json:"digest,omitempty"`
	// Length repeats Size, for consumers of the older field name.
	Length         int64  `json:"length,omitempty"`
	Repository     string `json:"repository"`
	FromRepository string `json:"fromRepository,omitempty"`
	URL            string `json:"url,omitempty"`
	Tag            string `json:"tag,omitempty"`
}

// Request describes the HTTP request that caused the event.
type Request struct {
	ID        string `json:"id"`
	Addr      string `json:"addr"`
	Host      string `json:"host"`
	Method    string `json:"method"`
	UserAgent string `json:"useragent"`
}

// Actor is who made the request: the authenticated user, empty when
// anonymous.
type Actor struct {
	Name string `json:"name,omitempty"`
}

// Source is the registry process that emitted the event; replicas differ by
// InstanceID.
type Source struct {
	Addr       string `json:"addr"`
	InstanceID string `json:"instanceID"`
}

// NewID returns a random (version 4) UUID, the form event and request ids
// take.
func NewID() string {
	var b [16]byte
	rand.Read(b[:]) // documented never to fail since Go 1.24
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
