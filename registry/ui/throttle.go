package ui

import (
	"net"
	"sync"
	"time"
)

// Sign-in throttling: after maxFailures wrong passwords for one account
// from one client address within failureWindow, further attempts from
// there are refused for lockout, without checking the password. Keyed by
// the pair, so nobody can lock an account out from elsewhere; per
// process, so replicas each count their own.
const (
	maxFailures   = 5
	failureWindow = 10 * time.Minute
	lockout       = time.Minute
	maxTracked    = 10000
)

type failures struct {
	n     int
	first time.Time
	until time.Time // refused before this
}

type throttle struct {
	mu   sync.Mutex
	seen map[string]*failures
	now  func() time.Time
}

func newThrottle() *throttle {
	return &throttle{seen: map[string]*failures{}, now: time.Now}
}

func throttleKey(user, remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	return user + "\x00" + host
}

// blocked reports how long the pair must still wait.
func (t *throttle) blocked(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f := t.seen[key]; f != nil {
		return f.until.Sub(t.now())
	}
	return 0
}

// failed counts a wrong password.
func (t *throttle) failed(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	f := t.seen[key]
	if f == nil || now.Sub(f.first) > failureWindow {
		if len(t.seen) >= maxTracked {
			t.prune(now)
		}
		f = &failures{first: now}
		t.seen[key] = f
	}
	f.n++
	if f.n >= maxFailures {
		f.until = now.Add(lockout)
		f.n, f.first = 0, now
	}
}

// succeeded forgets the pair's failures.
func (t *throttle) succeeded(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.seen, key)
}

// prune drops entries past their window and lockout; if a flood of
// distinct pairs leaves too many, it starts over rather than grow.
func (t *throttle) prune(now time.Time) {
	for k, f := range t.seen {
		if now.Sub(f.first) > failureWindow && now.After(f.until) {
			delete(t.seen, k)
		}
	}
	if len(t.seen) >= maxTracked {
		clear(t.seen)
	}
}
