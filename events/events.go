// Package events is the engine's in-process event bus behind GET /events:
// services publish lifecycle events, subscribers receive them live, and a
// bounded ring keeps recent ones for --since.
package events

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// ringSize bounds the events kept for replay, as dockerd keeps 256.
const ringSize = 1024

// Bus fans events out to subscribers. The zero value is not usable; use New.
type Bus struct {
	mu   sync.Mutex
	ring []events.Message
	subs map[chan events.Message]struct{}
	now  func() time.Time
}

// New returns an empty bus.
func New() *Bus {
	return &Bus{subs: map[chan events.Message]struct{}{}, now: time.Now}
}

// Publish records an event and delivers it to every subscriber. A slow
// subscriber loses events rather than stalling the engine.
func (b *Bus) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	t := b.now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: t.Unix(), TimeNano: t.UnixNano()}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ring = append(b.ring, m)
	if len(b.ring) > ringSize {
		b.ring = b.ring[len(b.ring)-ringSize:]
	}
	for ch := range b.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// Events returns the kept events in [since, until] that match filters and,
// when until is zero, a channel of live ones that closes when ctx ends.
func (b *Bus) Events(ctx context.Context, since, until time.Time, filters map[string][]string) ([]events.Message, <-chan events.Message, error) {
	f := newFilter(filters)
	b.mu.Lock()
	var past []events.Message
	for _, m := range b.ring {
		t := time.Unix(0, m.TimeNano)
		if (!since.IsZero() && t.Before(since)) || (!until.IsZero() && t.After(until)) || !f.match(m) {
			continue
		}
		past = append(past, m)
	}
	if !until.IsZero() && !until.After(b.now()) {
		b.mu.Unlock()
		return past, nil, nil
	}
	in := make(chan events.Message, 64)
	b.subs[in] = struct{}{}
	b.mu.Unlock()

	out := make(chan events.Message)
	go func() {
		defer close(out)
		defer func() {
			b.mu.Lock()
			delete(b.subs, in)
			b.mu.Unlock()
		}()
		var deadline <-chan time.Time
		if !until.IsZero() {
			timer := time.NewTimer(time.Until(until))
			defer timer.Stop()
			deadline = timer.C
		}
		for {
			select {
			case <-ctx.Done():
				return
			case <-deadline:
				return
			case m := <-in:
				if !f.match(m) {
					continue
				}
				select {
				case out <- m:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return past, out, nil
}

type filter map[string][]string

func newFilter(f map[string][]string) filter { return filter(f) }

func (f filter) match(m events.Message) bool {
	for key, vals := range f {
		if !f.matchKey(key, vals, m) {
			return false
		}
	}
	return true
}

func (f filter) matchKey(key string, vals []string, m events.Message) bool {
	for _, v := range vals {
		switch key {
		case "type":
			if string(m.Type) == v {
				return true
			}
		case "event":
			if string(m.Action) == v || strings.HasPrefix(string(m.Action), v+":") {
				return true
			}
		case "container", "image", "network", "volume":
			if string(m.Type) != key {
				continue
			}
			if m.Actor.ID == v || strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v {
				return true
			}
		case "label":
			k, want, hasV := strings.Cut(v, "=")
			got, ok := m.Actor.Attributes[k]
			if ok && (!hasV || got == want) {
				return true
			}
		default:
			return true // unknown keys were rejected by the API layer
		}
	}
	return false
}
