package notify

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"berth/errdefs"
)

// Defaults of an endpoint's settings.
const (
	DefaultTimeout    = 5 * time.Second
	DefaultThreshold  = 3
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 5 * time.Minute
	DefaultQueueSize  = 10000
)

// Endpoint configures one webhook.
type Endpoint struct {
	Name    string
	URL     string
	Headers http.Header // sent with every POST (e.g. Authorization)
	// Timeout bounds one POST, connection to response; default 5 s.
	Timeout time.Duration
	// Threshold is how many failures in a row mark the endpoint down
	// (logged once, and the up metric goes to 0); default 3.
	Threshold int
	// Backoff is the wait before the first retry, doubled after each
	// further failure up to MaxBackoff (a Retry-After the endpoint sends
	// is honoured within that bound); defaults 1 s and 5 min.
	Backoff    time.Duration
	MaxBackoff time.Duration
	// QueueSize bounds the events waiting for the endpoint; default
	// 10,000 (events are about half a kilobyte in memory).
	QueueSize int
	// IgnoredActions and IgnoredMediaTypes filter events out before they
	// are queued. Media types filter targets that have one (manifests,
	// blobs), not tag or repository deletes.
	IgnoredActions    []string
	IgnoredMediaTypes []string
	Disabled          bool
}

// Config is every endpoint and what identifies this registry process in
// the events' source.
type Config struct {
	Endpoints []Endpoint
	// SourceAddr is the registry's address in events (host:port);
	// InstanceID names this process, a random UUID when empty.
	SourceAddr string
	InstanceID string
}

var actions = []string{ActionPush, ActionPull, ActionMount, ActionDelete}

// Validate checks every endpoint: a unique name, an http(s) URL, no
// negative durations or sizes, known actions.
func (c Config) Validate() error {
	seen := map[string]bool{}
	for i, e := range c.Endpoints {
		if e.Name == "" {
			return fmt.Errorf("notification endpoint %d: name required: %w", i, errdefs.ErrInvalidArgument)
		}
		if seen[e.Name] {
			return fmt.Errorf("notification endpoint %q: name used twice: %w", e.Name, errdefs.ErrInvalidArgument)
		}
		seen[e.Name] = true
		if u, err := url.Parse(e.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("notification endpoint %q: url %q: want http(s)://host[:port]/path: %w", e.Name, e.URL, errdefs.ErrInvalidArgument)
		}
		if e.Timeout < 0 || e.Backoff < 0 || e.MaxBackoff < 0 || e.Threshold < 0 || e.QueueSize < 0 {
			return fmt.Errorf("notification endpoint %q: negative timeout, backoff, threshold or queue size: %w", e.Name, errdefs.ErrInvalidArgument)
		}
		if e.MaxBackoff > 0 && e.Backoff > e.MaxBackoff {
			return fmt.Errorf("notification endpoint %q: backoff %s above maxBackoff %s: %w", e.Name, e.Backoff, e.MaxBackoff, errdefs.ErrInvalidArgument)
		}
		for _, a := range e.IgnoredActions {
			if !slices.Contains(actions, a) {
				return fmt.Errorf("notification endpoint %q: action %q: want one of %v: %w", e.Name, a, actions, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// withDefaults fills the zero settings.
func (e Endpoint) withDefaults() Endpoint {
	if e.Timeout == 0 {
		e.Timeout = DefaultTimeout
	}
	if e.Threshold == 0 {
		e.Threshold = DefaultThreshold
	}
	if e.Backoff == 0 {
		e.Backoff = DefaultBackoff
	}
	if e.MaxBackoff == 0 {
		e.MaxBackoff = max(DefaultMaxBackoff, e.Backoff)
	}
	if e.QueueSize == 0 {
		e.QueueSize = DefaultQueueSize
	}
	return e
}

// wants reports whether the endpoint takes the event.
func (e Endpoint) wants(ev Event) bool {
	if slices.Contains(e.IgnoredActions, ev.Action) {
		return false
	}
	return ev.Target.MediaType == "" || !slices.Contains(e.IgnoredMediaTypes, ev.Target.MediaType)
}
