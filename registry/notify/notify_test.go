package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// receiver is a webhook endpoint on loopback. answer decides the response
// to the n-th POST (from 0); envelopes answered 2xx are recorded.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(n int, w http.ResponseWriter, r *http.Request) int

	mu       sync.Mutex
	posts    int
	got      []Envelope
	headers  []http.Header
	arrived  chan struct{} // a token per accepted envelope
	requests chan struct{} // a token per POST, before it is answered
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	rc := &receiver{t: t, answer: answer, arrived: make(chan struct{}, 1000), requests: make(chan struct{}, 1000)}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	rc.mu.Lock()
	n := rc.posts
	rc.posts++
	rc.mu.Unlock()
	rc.requests <- struct{}{}
	code := http.StatusOK
	if rc.answer != nil {
		code = rc.answer(n, w, r)
	}
	if code == 0 {
		return // the answer wrote (or abandoned) the response itself
	}
	w.WriteHeader(code)
	if code/100 != 2 {
		return
	}
	var env Envelope
	if err != nil || json.Unmarshal(body, &env) != nil {
		rc.t.Errorf("bad envelope %q: %v", body, err)
	}
	rc.mu.Lock()
	rc.got = append(rc.got, env)
	rc.headers = append(rc.headers, r.Header.Clone())
	rc.mu.Unlock()
	rc.arrived <- struct{}{}
}

// events waits until n events were accepted and returns them in order.
func (rc *receiver) events(n int) []Event {
	rc.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		rc.mu.Lock()
		var all []Event
		for _, e := range rc.got {
			all = append(all, e.Events...)
		}
		rc.mu.Unlock()
		if len(all) >= n {
			return all
		}
		select {
		case <-rc.arrived:
		case <-deadline:
			rc.t.Fatalf("received %d events, want %d", len(all), n)
		}
	}
}

func newNotifier(t *testing.T, log *slog.Logger, eps ...Endpoint) *Notifier {
	t.Helper()
	n, err := New(Config{Endpoints: eps, SourceAddr: "registry.test:5000", InstanceID: "instance-1"}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n.Close(ctx)
	})
	return n
}

func pushEvent(repo, tag string) Event {
	return Event{Action: ActionPush, Target: Target{MediaType: "application/vnd.oci.image.manifest.v1+json", Size: 7,
		Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Repository: repo, Tag: tag, URL: "http://registry.test:5000/v2/" + repo + "/manifests/" + tag},
		Request: Request{ID: "req-1", Addr: "192.0.2.1:1234", Host: "registry.test:5000", Method: "PUT", UserAgent: "docker/28"},
		Actor:   Actor{Name: "alice"}}
}

// stat waits (a while) for the endpoint's counters to satisfy ok: the
// sender counts a delivery once the response reaches it, after the
// receiver saw the envelope.
func stat(t *testing.T, n *Notifier, i int, ok func(Stats) bool) Stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := n.Stats()[i]
		if ok(st) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEnvelope: the wire form of the CNCF registry's notifications: media
// type, configured headers, every field, stamped ids, time and source.
func TestEnvelope(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, nil)
	n := newNotifier(t, nil, Endpoint{Name: "hook", URL: rc.srv.URL + "/events", Headers: http.Header{"Authorization": {"Bearer s3cret"}}})
	n.Notify(pushEvent("alice/app", "v1"), pushEvent("alice/app", "v2"))
	evs := rc.events(2)
	h := rc.headers[0]
	if h.Get("Content-Type") != EventsMediaType || h.Get("Authorization") != "Bearer s3cret" {
		t.Fatalf("headers %v", h)
	}
	raw, _ := json.Marshal(evs[0])
	for _, want := range []string{`"action":"push"`, `"mediaType":"application/vnd.oci.image.manifest.v1+json"`, `"size":7`,
		`"length":7`, `"repository":"alice/app"`, `"tag":"v1"`, `"url":"http://registry.test:5000/v2/alice/app/manifests/v1"`,
		`"useragent":"docker/28"`, `"addr":"192.0.2.1:1234"`, `"method":"PUT"`, `"actor":{"name":"alice"}`,
		`"source":{"addr":"registry.test:5000","instanceID":"instance-1"}`} {
		if !bytes.Contains(raw, []byte(want)) {
			t.Errorf("event %s lacks %s", raw, want)
		}
	}
	if evs[0].ID == "" || evs[0].ID == evs[1].ID || len(evs[0].ID) != 36 || time.Since(evs[0].Timestamp) > time.Minute {
		t.Errorf("ids %q %q, timestamp %v", evs[0].ID, evs[1].ID, evs[0].Timestamp)
	}
	if st := stat(t, n, 0, func(st Stats) bool { return st.Delivered == 2 }); st.Delivered != 2 || st.Failures != 0 || !st.Up {
		t.Errorf("stats %+v", st)
	}
}

// TestRetries: failed POSTs are retried with backoff until the endpoint
// takes the events, each delivered once and in order.
func TestRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		fail   int // POSTs that fail first
		answer func(w http.ResponseWriter, r *http.Request) int
	}{
		{"500", 3, func(http.ResponseWriter, *http.Request) int { return 500 }},
		{"503-retry-after", 1, func(w http.ResponseWriter, _ *http.Request) int { w.Header().Set("Retry-After", "1"); return 503 }},
		{"429", 2, func(http.ResponseWriter, *http.Request) int { return 429 }},
		{"timeout", 2, func(_ http.ResponseWriter, r *http.Request) int { <-r.Context().Done(); return 0 }},
		{"connection-cut", 2, func(w http.ResponseWriter, _ *http.Request) int {
			c, _, _ := w.(http.Hijacker).Hijack()
			c.Close()
			return 0
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, func(n int, w http.ResponseWriter, r *http.Request) int {
				if n < tc.fail {
					return tc.answer(w, r)
				}
				return 200
			})
			n := newNotifier(t, nil, Endpoint{Name: "hook", URL: rc.srv.URL, Timeout: 200 * time.Millisecond,
				Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, Threshold: 2})
			n.Notify(pushEvent("r", "a"))
			evs := rc.events(1)
			n.Notify(pushEvent("r", "b"))
			evs = rc.events(2)
			if len(evs) != 2 || evs[0].Target.Tag != "a" || evs[1].Target.Tag != "b" {
				t.Fatalf("events %+v", evs)
			}
			st := stat(t, n, 0, func(st Stats) bool { return st.Delivered == 2 })
			if st.Delivered != 2 || st.Failures != uint64(tc.fail) || !st.Up {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

// TestRefused: a 4xx other than 408/429 is not retried; the next events
// go on.
func TestRefused(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n == 0 {
			return http.StatusBadRequest
		}
		return 200
	})
	n := newNotifier(t, nil, Endpoint{Name: "hook", URL: rc.srv.URL, Backoff: time.Hour})
	n.Notify(pushEvent("r", "refused"))
	<-rc.requests
	n.Notify(pushEvent("r", "taken"))
	if evs := rc.events(1); evs[0].Target.Tag != "taken" {
		t.Fatalf("events %+v", evs)
	}
	if st := stat(t, n, 0, func(st Stats) bool { return st.Delivered == 1 }); st.Rejected != 1 || st.Delivered != 1 {
		t.Fatalf("stats %+v", st)
	}
}
