package notify

import (
	"context"
	"log/slog"
	"sync"
)

// queue is a bounded FIFO of events. push never blocks: when the queue is
// full the event is dropped, counted, and the first drop of an episode is
// logged (and its end, with the count), so a dead endpoint does not flood
// the log.
type queue struct {
	log  *slog.Logger
	size int
	wake chan struct{} // a token when events arrive or the queue closes

	mu       sync.Mutex
	events   []Event
	closed   bool
	dropped  uint64 // since start
	episode  uint64 // dropped since the queue last had room
	dropping bool
}

func newQueue(size int, log *slog.Logger) *queue {
	return &queue{log: log, size: size, wake: make(chan struct{}, 1)}
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// push appends ev, or drops it when the queue is full or closed.
func (q *queue) push(ev Event) {
	q.mu.Lock()
	if q.closed {
		// A request finishing during shutdown: nothing will send it.
		q.dropped++
		q.mu.Unlock()
		return
	}
	if len(q.events) >= q.size {
		q.dropped++
		q.episode++
		first := !q.dropping
		q.dropping = true
		q.mu.Unlock()
		if first {
			q.log.Warn("notification queue full: dropping events until the endpoint catches up", "queue", q.size)
		}
		return
	}
	q.events = append(q.events, ev)
	ended := q.episode
	if q.dropping {
		q.dropping, q.episode = false, 0
	}
	q.mu.Unlock()
	if ended > 0 {
		q.log.Warn("notification queue has room again", "dropped", ended)
	}
	q.signal()
}

// take waits for events and returns up to max of them, oldest first; false
// once the queue is closed and empty, or ctx ends.
func (q *queue) take(ctx context.Context, max int) ([]Event, bool) {
	for {
		if ctx.Err() != nil {
			return nil, false
		}
		q.mu.Lock()
		if n := min(len(q.events), max); n > 0 {
			batch := make([]Event, n)
			copy(batch, q.events)
			// Shift rather than reslice, so the backing array does not
			// keep growing while the endpoint lags.
			q.events = q.events[:copy(q.events, q.events[n:])]
			q.mu.Unlock()
			return batch, true
		}
		closed := q.closed
		q.mu.Unlock()
		if closed {
			return nil, false
		}
		select {
		case <-ctx.Done():
		case <-q.wake:
		}
	}
}

// close stops taking events; take still returns what is queued.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// discard empties the queue and returns how many events it held.
func (q *queue) discard() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.events)
	q.events = nil
	return n
}

func (q *queue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.events)
}

func (q *queue) droppedTotal() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}
