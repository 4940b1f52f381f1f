// Package upstream is the registry's client of the registries it mirrors:
// manifests, blobs and tag lists over the distribution API, with Basic or
// Docker token authentication from per-upstream credentials, and timeouts
// on connecting, on the response and on a stalled body. It checks what the
// upstream answers (sizes, media types, digests) so that a broken or
// hostile upstream gives precise errors, never bad cache entries.
//
// Errors are of kind errdefs.ErrNotFound (the upstream says it has no such
// thing), errdefs.ErrUnauthenticated / ErrPermissionDenied (it refused our
// credentials) and errdefs.ErrUnavailable (unreachable, timed out, 5xx,
// throttled, or an answer that makes no sense).
package upstream

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"berth/errdefs"
)

// Config describes one upstream registry.
type Config struct {
	URL      string // base URL, "https://registry-1.docker.io"
	Username string
	Password string
	// Timeout bounds connecting, waiting for response headers, and any
	// pause in a body; zero means 30 s.
	Timeout time.Duration
	// InsecureSkipVerify accepts any TLS certificate (test registries).
	InsecureSkipVerify bool
}

// Client talks to one upstream. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	cfg    Config
	http   *http.Client
	log    *slog.Logger
	mu     sync.Mutex
	tokens map[string]token // scope -> token
	scheme string           // "basic" or "bearer" once challenged
}

type token struct {
	value   string
	expires time.Time
}

// New returns a client of the upstream at cfg.URL.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(cfg.URL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("upstream url %q: want http(s)://host[:port]: %w", cfg.URL, errdefs.ErrInvalidArgument)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   cfg.Timeout,
		ResponseHeaderTimeout: cfg.Timeout,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSClientConfig:       &tls.Config{InsecureSkipVerify: cfg.InsecureSkipVerify},
	}
	return &Client{base: u, cfg: cfg, http: &http.Client{Transport: tr}, log: log,
		tokens: map[string]token{}}, nil
}

// Host is the upstream's host[:port].
func (c *Client) Host() string { return c.base.Host }

// URL is the upstream's base URL.
func (c *Client) URL() string { return c.base.String() }

// errorf makes an error of kind with the upstream's URL in front.
func (c *Client) errorf(kind error, format string, args ...any) error {
	return fmt.Errorf("upstream %s: %s: %w", c.base.Host, fmt.Sprintf(format, args...), kind)
}

// do sends a request for repo's scope, answering an auth challenge once.
func (c *Client) do(ctx context.Context, method, path, repo string, hdr http.Header) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, nil)
		if err != nil {
			return nil, c.errorf(errdefs.ErrInvalidArgument, "%v", err)
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		req.Header.Set("User-Agent", "berth-registry-mirror")
		if err := c.authorize(req, repo); err != nil {
			return nil, err
		}
		res, err := c.http.Do(req)
		if err != nil {
			if errors.Is(ctx.Err(), context.Canceled) {
				return nil, ctx.Err()
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				err = fmt.Errorf("timeout after %s", c.cfg.Timeout)
			}
			return nil, c.errorf(errdefs.ErrUnavailable, "%s %s: %v", method, path, err)
		}
		if res.StatusCode != http.StatusUnauthorized || attempt > 0 {
			return res, nil
		}
		ch := res.Header.Get("WWW-Authenticate")
		drain(res)
		if err := c.answerChallenge(ctx, ch, repo); err != nil {
			return nil, err
		}
	}
}

func drain(res *http.Response) {
	io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
}

// statusError maps an upstream's non-success answer to an error kind.
func (c *Client) statusError(res *http.Response, what string) error {
	defer drain(res)
	var body struct {
		Errors []struct{ Code, Message string }
	}
	msg := ""
	if json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&body) == nil && len(body.Errors) > 0 {
		msg = ": " + body.Errors[0].Code + " " + body.Errors[0].Message
	}
	switch {
	case res.StatusCode == http.StatusNotFound:
		return c.errorf(errdefs.ErrNotFound, "%s: 404%s", what, msg)
	case res.StatusCode == http.StatusUnauthorized:
		return c.errorf(errdefs.ErrUnauthenticated, "%s: credentials refused%s", what, msg)
	case res.StatusCode == http.StatusForbidden:
		return c.errorf(errdefs.ErrPermissionDenied, "%s: access denied%s", what, msg)
	case res.StatusCode == http.StatusTooManyRequests:
		return c.errorf(errdefs.ErrUnavailable, "%s: throttled (429)%s", what, msg)
	default:
		return c.errorf(errdefs.ErrUnavailable, "%s: status %d%s", what, res.StatusCode, msg)
	}
}

// stallReader fails a body that makes no progress for the timeout.
type stallReader struct {
	rc     io.ReadCloser
	timer  *time.Timer
	d      time.Duration
	cancel context.CancelFunc
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.rc.Close()
	s.cancel()
	return err
}

// withStall returns ctx for a request whose body will be read through
// the returned wrapper, cancelled after the timeout without progress.
func (c *Client) withStall(ctx context.Context) (context.Context, func(io.ReadCloser) io.ReadCloser, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	wrap := func(rc io.ReadCloser) io.ReadCloser {
		return &stallReader{rc: rc, timer: time.AfterFunc(c.cfg.Timeout, cancel), d: c.cfg.Timeout, cancel: cancel}
	}
	return ctx, wrap, cancel
}

// Blob opens blob d of repo; HEAD only checks it and returns a nil body.
// The caller verifies the digest of what it reads.
func (c *Client) Blob(ctx context.Context, repo string, d digest.Digest, head bool) (io.ReadCloser, int64, error) {
	method := http.MethodGet
	if head {
		method = http.MethodHead
	}
	sctx, wrap, cancel := c.withStall(ctx)
	res, err := c.do(sctx, method, "/v2/"+repo+"/blobs/"+d.String(), repo, nil)
	if err != nil {
		cancel()
		return nil, 0, err
	}
	if res.StatusCode != http.StatusOK {
		cancel()
		return nil, 0, c.statusError(res, "blob "+repo+"@"+d.String())
	}
	if res.ContentLength < 0 {
		drain(res)
		cancel()
		return nil, 0, c.errorf(errdefs.ErrUnavailable, "blob %s@%s: no Content-Length", repo, d)
	}
	if dh := res.Header.Get("Docker-Content-Digest"); dh != "" && dh != d.String() {
		drain(res)
		cancel()
		return nil, 0, c.errorf(errdefs.ErrUnavailable, "blob %s@%s: answered with digest %s", repo, d, dh)
	}
	if head {
		drain(res)
		cancel()
		return nil, res.ContentLength, nil
	}
	return wrap(res.Body), res.ContentLength, nil
}

// Tags lists repo's tags (the first page of up to 10,000).
func (c *Client) Tags(ctx context.Context, repo string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	res, err := c.do(ctx, http.MethodGet, "/v2/"+repo+"/tags/list?n=10000", repo, nil)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, c.statusError(res, "tags of "+repo)
	}
	defer drain(res)
	var body struct{ Tags []string }
	if err := json.NewDecoder(io.LimitReader(res.Body, 4<<20)).Decode(&body); err != nil {
		return nil, c.errorf(errdefs.ErrUnavailable, "tags of %s: unreadable answer: %v", repo, err)
	}
	return body.Tags, nil
}
