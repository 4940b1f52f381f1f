package api

import (
	"encoding/json"
	"net/http"
	"time"

	"berth/errdefs"

	"github.com/moby/moby/api/types/container"
)

// waitContainer sends the status line at once, so a client that waits
// before starting the container (as `run` does) knows the wait is in
// place, and the body when the condition is met.
func (s *server) waitContainer(w http.ResponseWriter, r *http.Request, req request) error {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return invalidCondition(string(cond))
	}
	ch, err := s.opts.Containers.ContainerWait(r.Context(), req.name, cond)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	flush(w)
	select {
	case resp, ok := <-ch:
		if !ok {
			// The backend gave up without a result: its context ended,
			// so the client is gone too.
			return nil
		}
		return json.NewEncoder(w).Encode(resp)
	case <-r.Context().Done():
		return nil
	}
}

// statsInterval is how often a stats stream samples, as in dockerd.
const statsInterval = time.Second

// containerStats answers one sample (one-shot), two samples a second apart
// so the client can compute CPU usage (stream=false), or a sample per
// second until the client leaves or the container stops. A sample with no
// read time is the backend saying the container is not running: it is
// sent once and ends the stream, as dockerd does.
func (s *server) containerStats(w http.ResponseWriter, r *http.Request, req request) error {
	q := r.URL.Query()
	stream := q.Get("stream") == "" || boolValue(q, "stream")
	oneShot := boolValue(q, "one-shot")
	if stream && oneShot {
		return errdefs.Errorf(errdefs.ErrInvalidArgument, "cannot have stream=true and one-shot=true")
	}
	ctx := r.Context()
	prev, err := s.opts.Containers.ContainerStats(ctx, req.name)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(flushWriter{w})
	running := !prev.Read.IsZero()
	if !stream && (oneShot || !running) {
		return enc.Encode(prev)
	}
	if stream {
		if err := enc.Encode(prev); err != nil || !running {
			return err
		}
	}
	ticker := time.NewTicker(statsInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
		next, err := s.opts.Containers.ContainerStats(ctx, req.name)
		if err != nil {
			return err
		}
		if next.Read.IsZero() {
			return nil
		}
		next.PreCPUStats, next.PreRead = prev.CPUStats, prev.Read
		if err := enc.Encode(next); err != nil || !stream {
			return err
		}
		prev = next
	}
}
