package notify

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxBatch bounds the events of one envelope.
const maxBatch = 32

// Notifier queues events for every endpoint and delivers them in the
// background. Notify never blocks; Close stops it.
type Notifier struct {
	src  Source
	log  *slog.Logger
	sink []*sink
	stop context.CancelFunc // ends deliveries in flight at Close's deadline
	wg   sync.WaitGroup
}

// New validates cfg and starts one delivery goroutine per enabled endpoint;
// Close stops them.
func New(cfg Config, log *slog.Logger) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := &Notifier{src: Source{Addr: cfg.SourceAddr, InstanceID: cfg.InstanceID}, log: log}
	if n.src.InstanceID == "" {
		n.src.InstanceID = NewID()
	}
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	for _, e := range cfg.Endpoints {
		if e.Disabled {
			continue
		}
		s := newSink(e.withDefaults(), log.With("endpoint", e.Name))
		n.sink = append(n.sink, s)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			s.run(ctx)
		}()
	}
	return n, nil
}

// Notify stamps the events (id, timestamp, source) and queues them for
// every endpoint that wants them. It never blocks: a full queue drops.
func (n *Notifier) Notify(events ...Event) {
	now := time.Now().UTC()
	for i := range events {
		ev := &events[i]
		if ev.ID == "" {
			ev.ID = NewID()
		}
		if ev.Timestamp.IsZero() {
			ev.Timestamp = now
		}
		ev.Source = n.src
		if ev.Target.Size > 0 {
			ev.Target.Length = ev.Target.Size
		}
	}
	for _, s := range n.sink {
		for _, ev := range events {
			if s.cfg.wants(ev) {
				s.q.push(ev)
			}
		}
	}
}

// Close stops taking events and delivers what is queued until ctx ends
// (no retries once ctx is done); what is left then is counted as lost.
func (n *Notifier) Close(ctx context.Context) error {
	for _, s := range n.sink {
		s.q.close()
	}
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		n.stop()
		return nil
	case <-ctx.Done():
		n.stop()
		<-done
		return ctx.Err()
	}
}

// Stats are an endpoint's counters since start.
type Stats struct {
	Endpoint  string
	Queued    int    // waiting now, the batch being sent included
	Delivered uint64 // events the endpoint accepted (2xx)
	Dropped   uint64 // events refused because the queue was full (or closed)
	Rejected  uint64 // events in envelopes the endpoint refused for good (4xx)
	Lost      uint64 // events still queued when Close's deadline came
	Failures  uint64 // failed POSTs (each retried)
	Up        bool   // fewer than Threshold failures in a row
}

// Stats reports every enabled endpoint's counters, in configuration order.
func (n *Notifier) Stats() []Stats {
	out := make([]Stats, 0, len(n.sink))
	for _, s := range n.sink {
		out = append(out, s.stats())
	}
	return out
}
