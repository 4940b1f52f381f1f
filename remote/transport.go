package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"berth/errdefs"
)

// maxBackoff caps one retry delay, Retry-After included.
const maxBackoff = 30 * time.Second

// request describes one registry API call, independent of the endpoint it
// goes to.
type request struct {
	method string
	domain string // reference domain (credentials, endpoint choice)
	path   string // /v2/...; ignored when abs is set
	query  url.Values
	abs    *url.URL // an upload Location, already absolute
	header http.Header
	// body returns the request body; it is called again for a retry and may
	// fail if the body cannot be replayed.
	body   func() (io.Reader, error)
	length int64 // Content-Length when body is set; -1 unknown
	scopes []string
	pull   bool // mirrors may serve it
	// idempotent requests are retried on transient failures.
	idempotent bool
}

// do sends r to the mirrors (for pulls) and then the origin, returning the
// first usable response and the endpoint that gave it. The caller closes
// the body and interprets the status.
func (s *Session) do(ctx context.Context, r request) (*http.Response, endpoint, error) {
	eps := s.c.endpoints(r.domain, r.pull)
	var lastErr error
	for i, ep := range eps {
		resp, err := s.doEndpoint(ctx, ep, r)
		last := i == len(eps)-1
		if !ep.mirror || last {
			return resp, ep, err
		}
		if err == nil && resp.StatusCode < 300 {
			return resp, ep, nil
		}
		if err == nil {
			err = responseError(resp)
			resp.Body.Close()
		}
		if ctx.Err() != nil {
			return nil, ep, ctx.Err()
		}
		lastErr = err
		s.c.log.DebugContext(ctx, "mirror failed, trying next", "mirror", ep.host, "err", err)
	}
	return nil, endpoint{}, lastErr
}

// doEndpoint sends r to one endpoint, answering auth challenges, falling
// back from HTTPS to HTTP on insecure hosts, and retrying transient
// failures of idempotent requests with exponential backoff.
func (s *Session) doEndpoint(ctx context.Context, ep endpoint, r request) (*http.Response, error) {
	retried401 := false
	delay := s.c.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		resp, err := s.send(ctx, ep, r, retried401)
		var ae authError
		if errors.As(err, &ae) {
			// The token server's answer stands on its own (and it has its
			// own host); retrying the registry cannot change it.
			return nil, ae.err
		}
		if err != nil && ep.insecure && ep.scheme == "https" && ctx.Err() == nil && !errors.Is(err, errNoReplay) {
			s.c.log.DebugContext(ctx, "https failed on insecure registry, trying http", "host", ep.host, "err", err)
			ep.scheme = "http"
			var err2 error
			if resp, err2 = s.send(ctx, ep, r, retried401); err2 == nil {
				s.c.mu.Lock()
				s.c.plainHTTP[ep.host] = true
				s.c.mu.Unlock()
				err = nil
			} else {
				ep.scheme = "https"
			}
		}
		if err != nil {
			if !r.idempotent || attempt >= s.c.opts.MaxRetries || ctx.Err() != nil || errors.Is(err, errNoReplay) {
				return nil, fmt.Errorf("%s %s: %w: %w", r.method, ep.host, err, errdefs.ErrUnavailable)
			}
			s.c.log.DebugContext(ctx, "retrying", "host", ep.host, "err", err, "delay", delay)
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
			delay = min(delay*2, maxBackoff)
			continue
		}
		resp, err = s.afterSend(ctx, ep, r, resp, &retried401, attempt, &delay)
		if errors.Is(err, errAgain) {
			continue
		}
		return resp, err
	}
}

// authError marks a failure to obtain credentials for a request, as
// opposed to a failure to reach the registry.
type authError struct{ err error }

func (e authError) Error() string { return e.err.Error() }
func (e authError) Unwrap() error { return e.err }

var (
	errAgain    = errors.New("send again")
	errNoReplay = errors.New("request body cannot be replayed")
)

// afterSend decides whether a response is final or the request goes again
// (errAgain): after learning a challenge, or on a retryable status.
func (s *Session) afterSend(ctx context.Context, ep endpoint, r request, resp *http.Response, retried401 *bool, attempt int, delay *time.Duration) (*http.Response, error) {
	switch {
	case resp.StatusCode == http.StatusUnauthorized && !*retried401:
		if !s.c.learnChallenge(ep.host, resp) {
			return resp, nil
		}
		*retried401 = true
		drain(resp)
		return nil, errAgain
	case retryableStatus(resp.StatusCode) && r.idempotent && attempt < s.c.opts.MaxRetries:
		wait := *delay
		if ra, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			wait = min(ra, maxBackoff)
		}
		drain(resp)
		s.c.log.DebugContext(ctx, "retrying", "host", ep.host, "status", resp.StatusCode, "delay", wait)
		if err := sleep(ctx, wait); err != nil {
			return nil, err
		}
		*delay = min(*delay*2, maxBackoff)
		return nil, errAgain
	}
	return resp, nil
}

// send performs one HTTP exchange. fresh forces a new token rather than a
// cached one (the cached one was just refused).
func (s *Session) send(ctx context.Context, ep endpoint, r request, fresh bool) (*http.Response, error) {
	u := r.abs
	if u == nil {
		u = ep.url(r.path)
		if len(r.query) > 0 {
			q := u.Query()
			for k, vs := range r.query {
				q[k] = append(q[k], vs...)
			}
			u.RawQuery = q.Encode()
		}
	} else if ep.scheme == "http" && u.Scheme == "https" && u.Host == ep.host {
		cp := *u
		cp.Scheme = "http"
		u = &cp
	}
	var body io.Reader
	if r.body != nil {
		b, err := r.body()
		if err != nil {
			return nil, err
		}
		body = b
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("request %s: %v: %w", u.Redacted(), err, errdefs.ErrInvalidArgument)
	}
	if r.body != nil {
		req.ContentLength = r.length
		if r.length == 0 {
			req.Body = http.NoBody
		}
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	req.Header.Set("User-Agent", s.c.opts.UserAgent)
	// Only the registry's own host gets its credentials (an upload Location
	// may point elsewhere).
	if u.Host == ep.host {
		if err := s.authorize(ctx, req, ep, r.scopes, fresh); err != nil {
			return nil, authError{err}
		}
	}
	hc, err := s.c.httpClient(ep)
	if err != nil {
		return nil, err
	}
	return hc.Do(req)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// retryAfter parses a Retry-After header: delta seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if secs, err := strconv.Atoi(v); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// drain discards a little of an unwanted body so the connection can be
// reused, then closes it.
func drain(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	resp.Body.Close()
}
