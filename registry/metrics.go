package registry

import (
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"berth/registry/notify"
)

// durationBuckets are the histogram's upper bounds in seconds.
var durationBuckets = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30}

type reqKey struct {
	method, route string
	code          int
}

type histogram struct {
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

// metrics collects request counts, latencies and bytes for /metrics in the
// Prometheus text format. It belongs to one handler; nothing is global.
type metrics struct {
	inflight atomic.Int64
	bytesIn  atomic.Uint64
	bytesOut atomic.Uint64

	mu        sync.Mutex
	requests  map[reqKey]uint64
	durations map[string]*histogram

	notifier *notify.Notifier // nil without webhooks
}

func newMetrics(n *notify.Notifier) *metrics {
	return &metrics{requests: map[reqKey]uint64{}, durations: map[string]*histogram{}, notifier: n}
}

func (m *metrics) observe(method, route string, code int, d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.requests[reqKey{method, route, code}]++
	h := m.durations[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(durationBuckets)+1)}
		m.durations[route] = h
	}
	s := d.Seconds()
	i := sort.SearchFloat64s(durationBuckets, s)
	h.counts[i]++
	h.sum += s
	h.n++
}

func (m *metrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.write(w)
}

func (m *metrics) write(w io.Writer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	b.WriteString("# HELP berth_registry_http_requests_total HTTP requests by method, route and status code.\n")
	b.WriteString("# TYPE berth_registry_http_requests_total counter\n")
	keys := make([]reqKey, 0, len(m.requests))
	for k := range m.requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, c := keys[i], keys[j]
		return a.route+a.method+strconv.Itoa(a.code) < c.route+c.method+strconv.Itoa(c.code)
	})
	for _, k := range keys {
		fmt.Fprintf(&b, "berth_registry_http_requests_total{method=%q,route=%q,code=\"%d\"} %d\n", k.method, k.route, k.code, m.requests[k])
	}
	b.WriteString("# HELP berth_registry_http_request_duration_seconds HTTP request latency by route.\n")
	b.WriteString("# TYPE berth_registry_http_request_duration_seconds histogram\n")
	routes := make([]string, 0, len(m.durations))
	for r := range m.durations {
		routes = append(routes, r)
	}
	sort.Strings(routes)
	for _, r := range routes {
		h := m.durations[r]
		var cum uint64
		for i, le := range durationBuckets {
			cum += h.counts[i]
			fmt.Fprintf(&b, "berth_registry_http_request_duration_seconds_bucket{route=%q,le=\"%g\"} %d\n", r, le, cum)
		}
		fmt.Fprintf(&b, "berth_registry_http_request_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", r, h.n)
		fmt.Fprintf(&b, "berth_registry_http_request_duration_seconds_sum{route=%q} %g\n", r, h.sum)
		fmt.Fprintf(&b, "berth_registry_http_request_duration_seconds_count{route=%q} %d\n", r, h.n)
	}
	fmt.Fprintf(&b, "# HELP berth_registry_http_request_bytes_total Request body bytes received.\n# TYPE berth_registry_http_request_bytes_total counter\nberth_registry_http_request_bytes_total %d\n", m.bytesIn.Load())
	fmt.Fprintf(&b, "# HELP berth_registry_http_response_bytes_total Response body bytes sent.\n# TYPE berth_registry_http_response_bytes_total counter\nberth_registry_http_response_bytes_total %d\n", m.bytesOut.Load())
	fmt.Fprintf(&b, "# HELP berth_registry_http_requests_in_flight Requests being served.\n# TYPE berth_registry_http_requests_in_flight gauge\nberth_registry_http_requests_in_flight %d\n", m.inflight.Load())
	if m.notifier != nil {
		writeNotifyMetrics(&b, m.notifier.Stats())
	}
	io.WriteString(w, b.String())
}

// writeNotifyMetrics renders the webhook endpoints' counters.
func writeNotifyMetrics(b *strings.Builder, stats []notify.Stats) {
	b.WriteString("# HELP berth_registry_notification_events_total Webhook events by endpoint and outcome " +
		"(delivered; dropped: queue full; rejected: refused with a 4xx; lost: still queued at shutdown).\n")
	b.WriteString("# TYPE berth_registry_notification_events_total counter\n")
	for _, st := range stats {
		for _, o := range []struct {
			name string
			n    uint64
		}{{"delivered", st.Delivered}, {"dropped", st.Dropped}, {"rejected", st.Rejected}, {"lost", st.Lost}} {
			fmt.Fprintf(b, "berth_registry_notification_events_total{endpoint=%q,outcome=%q} %d\n", st.Endpoint, o.name, o.n)
		}
	}
	b.WriteString("# HELP berth_registry_notification_failures_total Failed webhook POSTs (each retried or refused).\n")
	b.WriteString("# TYPE berth_registry_notification_failures_total counter\n")
	for _, st := range stats {
		fmt.Fprintf(b, "berth_registry_notification_failures_total{endpoint=%q} %d\n", st.Endpoint, st.Failures)
	}
	b.WriteString("# HELP berth_registry_notification_queue_length Webhook events waiting, the envelope in flight included.\n")
	b.WriteString("# TYPE berth_registry_notification_queue_length gauge\n")
	for _, st := range stats {
		fmt.Fprintf(b, "berth_registry_notification_queue_length{endpoint=%q} %d\n", st.Endpoint, st.Queued)
	}
	b.WriteString("# HELP berth_registry_notification_endpoint_up 0 once an endpoint failed threshold times in a row, until it answers.\n")
	b.WriteString("# TYPE berth_registry_notification_endpoint_up gauge\n")
	for _, st := range stats {
		up := 0
		if st.Up {
			up = 1
		}
		fmt.Fprintf(b, "berth_registry_notification_endpoint_up{endpoint=%q} %d\n", st.Endpoint, up)
	}
}
