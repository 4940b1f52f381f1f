package ui

import (
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"
)

func TestThrottle(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	th := newThrottle()
	th.now = func() time.Time { return now }
	alice, other := throttleKey("alice", "192.0.2.1:4000"), throttleKey("alice", "192.0.2.2:4000")
	if throttleKey("alice", "192.0.2.1:5555") != alice {
		t.Fatal("the client's port must not matter")
	}
	for i := range maxFailures - 1 {
		th.failed(alice)
		if th.blocked(alice) > 0 {
			t.Fatalf("blocked after %d failures", i+1)
		}
	}
	th.failed(alice)
	if got := th.blocked(alice); got != lockout {
		t.Fatalf("after %d failures: blocked %v, want %v", maxFailures, got, lockout)
	}
	if th.blocked(other) > 0 || th.blocked(throttleKey("bob", "192.0.2.1:1")) > 0 {
		t.Fatal("another address or account is blocked too")
	}
	now = now.Add(lockout + time.Second)
	if th.blocked(alice) > 0 {
		t.Fatal("still blocked after the lockout")
	}
	// Failures spread wider than the window never add up.
	for i := range 3 * maxFailures {
		th.failed(other)
		if th.blocked(other) > 0 {
			t.Fatalf("blocked at failure %d, each %v after the last", i+1, failureWindow/(maxFailures-1)+time.Second)
		}
		now = now.Add(failureWindow/(maxFailures-1) + time.Second)
	}
	th.failed(alice)
	th.succeeded(alice)
	if _, ok := th.seen[alice]; ok {
		t.Fatal("success keeps the failures")
	}
	for i := range maxTracked + 10 {
		th.failed(throttleKey(fmt.Sprint("u", i), "192.0.2.9:1"))
	}
	if len(th.seen) > maxTracked {
		t.Fatalf("%d pairs tracked, bound %d", len(th.seen), maxTracked)
	}
}

// TestSignInThrottled: the sixth attempt after five wrong passwords is
// refused with 429 without checking the (right) password.
func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	s := newSite(t, false)
	s.users()
	b := s.browser()
	tok := b.csrf("/ui/login")
	for range maxFailures {
		b.do("POST", "/ui/login", url.Values{"username": {"alice"}, "password": {"guess"}, "csrf": {tok}}).want(t, "wrong", 401, nil, nil)
	}
	p := b.do("POST", "/ui/login", url.Values{"username": {"alice"}, "password": {"alice-pw"}, "csrf": {tok}})
	p.want(t, "throttled", http.StatusTooManyRequests, []string{"Too many failed sign-ins; try again in"}, nil)
	if p.header.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	b.login("bob", "bob-pw") // another account from the same address
}
