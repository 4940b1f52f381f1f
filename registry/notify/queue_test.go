package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"berth/errdefs"
)

// TestQueueBound: with the endpoint stuck on the first envelope, the queue
// holds QueueSize events and drops the rest, without Notify ever waiting;
// the drop is counted and logged once; once the endpoint answers, every
// queued event arrives, in order.
func TestQueueBound(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n == 0 {
			<-release
		}
		return 200
	})
	var logBuf syncBuffer
	n := newNotifier(t, slog.New(slog.NewTextHandler(&logBuf, nil)), Endpoint{Name: "slow", URL: rc.srv.URL, QueueSize: 4, Timeout: time.Minute})
	n.Notify(pushEvent("r", "t0"))
	<-rc.requests // t0 is in flight, the queue empty
	for i := 1; i < 20; i++ {
		n.Notify(pushEvent("r", fmt.Sprintf("t%d", i)))
	}
	st := n.Stats()[0]
	if st.Queued != 5 || st.Dropped != 15 {
		t.Fatalf("stats with the endpoint stuck: %+v", st)
	}
	if c := strings.Count(logBuf.String(), "notification queue full"); c != 1 {
		t.Fatalf("%d drop warnings:\n%s", c, logBuf.String())
	}
	close(release)
	evs := rc.events(5)
	for i, ev := range evs {
		if ev.Target.Tag != fmt.Sprintf("t%d", i) {
			t.Fatalf("event %d is %s", i, ev.Target.Tag)
		}
	}
	n.Notify(pushEvent("r", "after"))
	rc.events(6)
	if !strings.Contains(logBuf.String(), "notification queue has room again") || !strings.Contains(logBuf.String(), "dropped=15") {
		t.Fatalf("log:\n%s", logBuf.String())
	}
	if st := stat(t, n, 0, func(st Stats) bool { return st.Delivered == 6 }); st.Delivered != 6 || st.Dropped != 15 || st.Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestDownEndpointKeepsEvents: an endpoint refusing connections is retried
// until it comes up; nothing within the queue bound is lost, and it is
// reported down meanwhile.
func TestDownEndpointKeepsEvents(t *testing.T) {
	t.Parallel()
	up := make(chan struct{})
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		select {
		case <-up:
			return 200
		default:
			return http.StatusBadGateway
		}
	})
	n := newNotifier(t, nil, Endpoint{Name: "down", URL: rc.srv.URL, Backoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, Threshold: 3})
	for i := range 50 {
		n.Notify(pushEvent("r", fmt.Sprintf("t%d", i)))
	}
	if st := stat(t, n, 0, func(st Stats) bool { return !st.Up }); st.Up || st.Delivered != 0 || st.Queued != 50 {
		t.Fatalf("stats while down: %+v", st)
	}
	close(up)
	if evs := rc.events(50); len(evs) != 50 || evs[49].Target.Tag != "t49" {
		t.Fatalf("%d events", len(evs))
	}
	if st := stat(t, n, 0, func(st Stats) bool { return st.Up && st.Delivered == 50 }); !st.Up || st.Failures < 3 {
		t.Fatalf("stats after: %+v", st)
	}
}

// TestFilters: ignored actions and media types are not queued; deletes of
// tags (no media type) pass a media type filter.
func TestFilters(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	all := newReceiver(t, nil)
	n := newNotifier(t, nil,
		Endpoint{Name: "filtered", URL: rc.srv.URL, IgnoredActions: []string{ActionPull}, IgnoredMediaTypes: []string{"application/octet-stream"}},
		Endpoint{Name: "all", URL: all.srv.URL})
	pull := pushEvent("r", "v1")
	pull.Action = ActionPull
	blob := pushEvent("r", "")
	blob.Target.MediaType = "application/octet-stream"
	del := Event{Action: ActionDelete, Target: Target{Repository: "r", Tag: "v1"}}
	n.Notify(pull, blob, pushEvent("r", "v2"), del)
	all.events(4)
	evs := rc.events(2)
	if len(evs) != 2 || evs[0].Target.Tag != "v2" || evs[1].Action != ActionDelete {
		t.Fatalf("filtered endpoint got %+v", evs)
	}
}

// TestCloseDelivers: Close sends what is queued before returning; what an
// endpoint that stays down still holds at the deadline is counted lost.
func TestCloseDelivers(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	down := newReceiver(t, func(int, http.ResponseWriter, *http.Request) int { return 500 })
	n, err := New(Config{Endpoints: []Endpoint{{Name: "up", URL: rc.srv.URL}, {Name: "down", URL: down.srv.URL, Backoff: 10 * time.Millisecond}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		n.Notify(pushEvent("r", fmt.Sprintf("t%d", i)))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	defer cancel()
	if err := n.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("close with an endpoint down: %v", err)
	}
	if len(rc.events(100)) != 100 {
		t.Fatal("queued events not delivered at close")
	}
	st := n.Stats()
	if st[0].Delivered != 100 || st[1].Lost != 100 || st[1].Queued != 0 {
		t.Fatalf("stats %+v", st)
	}
	n.Notify(pushEvent("r", "late"))
	if st := n.Stats(); st[0].Dropped != 1 {
		t.Fatalf("event after close: %+v", st[0])
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ep   Endpoint
		want string
	}{
		{"no name", Endpoint{URL: "http://h/"}, "name required"},
		{"no url", Endpoint{Name: "a"}, "url"},
		{"ftp", Endpoint{Name: "a", URL: "ftp://h/"}, "url"},
		{"no host", Endpoint{Name: "a", URL: "http:///x"}, "url"},
		{"negative timeout", Endpoint{Name: "a", URL: "http://h/", Timeout: -1}, "negative"},
		{"negative queue", Endpoint{Name: "a", URL: "http://h/", QueueSize: -1}, "negative"},
		{"backoff above max", Endpoint{Name: "a", URL: "http://h/", Backoff: time.Minute, MaxBackoff: time.Second}, "above maxBackoff"},
		{"unknown action", Endpoint{Name: "a", URL: "http://h/", IgnoredActions: []string{"fetch"}}, `action "fetch"`},
	} {
		_, err := New(Config{Endpoints: []Endpoint{tc.ep}}, nil)
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	_, err := New(Config{Endpoints: []Endpoint{{Name: "a", URL: "http://h/"}, {Name: "a", URL: "http://i/"}}}, nil)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("duplicate names: %v", err)
	}
	n, err := New(Config{Endpoints: []Endpoint{{Name: "off", URL: "http://h/", Disabled: true}}}, nil)
	if err != nil || len(n.Stats()) != 0 {
		t.Errorf("disabled endpoint: %v %v", err, n.Stats())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger and a test at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
