package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// sink is one endpoint: its queue, its delivery loop and its counters.
type sink struct {
	cfg    Endpoint
	log    *slog.Logger
	client *http.Client
	q      *queue

	mu       sync.Mutex // guards the counters below
	inflight int
	st       Stats
	inARow   int // failed POSTs since the last success
}

func newSink(cfg Endpoint, log *slog.Logger) *sink {
	return &sink{
		cfg: cfg, log: log, q: newQueue(cfg.QueueSize, log),
		// Redirects are not followed: a POST turned into a GET would
		// "succeed" without delivering anything.
		client: &http.Client{Timeout: cfg.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		st: Stats{Endpoint: cfg.Name, Up: true},
	}
}

func (s *sink) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.st
	st.Queued = s.q.len() + s.inflight
	st.Dropped = s.q.droppedTotal()
	return st
}

func (s *sink) count(f func(st *Stats)) {
	s.mu.Lock()
	f(&s.st)
	s.mu.Unlock()
}

// run delivers batches in order until the queue is closed and empty, or
// ctx ends.
func (s *sink) run(ctx context.Context) {
	for {
		batch, ok := s.q.take(ctx, maxBatch)
		if !ok {
			if n := s.q.discard(); n > 0 {
				s.count(func(st *Stats) { st.Lost += uint64(n) })
				s.log.Warn("notification events lost at shutdown", "count", n)
			}
			return
		}
		s.mu.Lock()
		s.inflight = len(batch)
		s.mu.Unlock()
		s.deliver(ctx, batch)
		s.mu.Lock()
		s.inflight = 0
		s.mu.Unlock()
	}
}

// permanentError is an answer that retrying cannot change.
type permanentError struct{ status string }

func (e *permanentError) Error() string { return "endpoint refused the events: " + e.status }

// deliver POSTs one envelope until the endpoint takes or refuses it, or
// ctx ends.
func (s *sink) deliver(ctx context.Context, batch []Event) {
	n := uint64(len(batch))
	body, err := json.Marshal(Envelope{Events: batch})
	if err != nil {
		s.count(func(st *Stats) { st.Rejected += n })
		s.log.Error("notification envelope", "err", err)
		return
	}
	for attempt := 0; ; attempt++ {
		retryAfter, err := s.post(ctx, body)
		var perm *permanentError
		switch {
		case err == nil:
			s.succeeded(n)
			return
		case ctx.Err() != nil:
			s.count(func(st *Stats) { st.Lost += n })
			return
		case errors.As(err, &perm):
			s.count(func(st *Stats) { st.Rejected += n; st.Failures++ })
			s.log.Warn("notification endpoint refused events; not retried", "events", n, "err", err)
			return
		}
		s.failed(err)
		wait := min(s.cfg.Backoff<<min(attempt, 30), s.cfg.MaxBackoff)
		// Equal jitter, so replicas retrying one endpoint spread out.
		wait = wait/2 + rand.N(wait/2+1)
		if retryAfter > wait {
			wait = min(retryAfter, s.cfg.MaxBackoff)
		}
		select {
		case <-ctx.Done():
			s.count(func(st *Stats) { st.Lost += n })
			return
		case <-time.After(wait):
		}
	}
}

func (s *sink) succeeded(n uint64) {
	s.mu.Lock()
	wasDown := !s.st.Up
	s.st.Delivered += n
	s.st.Up, s.inARow = true, 0
	s.mu.Unlock()
	if wasDown {
		s.log.Info("notification endpoint up again")
	}
}

func (s *sink) failed(err error) {
	s.mu.Lock()
	s.st.Failures++
	s.inARow++
	down := s.inARow == s.cfg.Threshold
	if down {
		s.st.Up = false
	}
	s.mu.Unlock()
	if down {
		s.log.Warn("notification endpoint down; retrying with backoff", "failures", s.cfg.Threshold, "err", err)
	} else {
		s.log.Debug("notification delivery failed; will retry", "err", err)
	}
}

// post sends the envelope once. Network errors, timeouts, 408, 429 and 5xx
// are worth retrying (with the Retry-After the endpoint asked for, if any);
// other non-2xx answers are permanent.
func (s *sink) post(ctx context.Context, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.URL, bytes.NewReader(body))
	if err != nil {
		return 0, &permanentError{status: err.Error()}
	}
	for k, vs := range s.cfg.Headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	req.Header.Set("Content-Type", EventsMediaType)
	res, err := s.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post events: %w", err)
	}
	// Drained (within reason) so the connection is reused.
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	switch c := res.StatusCode; {
	case c >= 200 && c < 300:
		return 0, nil
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		var after time.Duration
		if secs, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && secs > 0 {
			after = time.Duration(secs) * time.Second
		}
		return after, fmt.Errorf("post events: %s", res.Status)
	default:
		return 0, &permanentError{status: res.Status}
	}
}
