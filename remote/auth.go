package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"berth/errdefs"
	"berth/remote/credentials"
)

// clientID identifies berth to OAuth2 token endpoints.
const clientID = "berth"

// challenge is a parsed WWW-Authenticate header.
type challenge struct {
	scheme string // "basic" or "bearer"
	params map[string]string
}

// parseChallenge reads the first challenge of a WWW-Authenticate value:
// scheme, then comma-separated key=value pairs whose values may be quoted.
func parseChallenge(h string) (challenge, bool) {
	h = strings.TrimSpace(h)
	sp := strings.IndexByte(h, ' ')
	if sp < 0 {
		if h == "" {
			return challenge{}, false
		}
		return challenge{scheme: strings.ToLower(h), params: map[string]string{}}, true
	}
	ch := challenge{scheme: strings.ToLower(h[:sp]), params: map[string]string{}}
	rest := h[sp+1:]
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		eq := strings.IndexByte(rest, '=')
		if eq < 0 {
			break
		}
		key := strings.ToLower(strings.TrimSpace(rest[:eq]))
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if rest[i] == '\\' && i+1 < len(rest) {
					i++
				}
				b.WriteByte(rest[i])
			}
			val, rest = b.String(), rest[min(i+1, len(rest)):]
		} else {
			end := strings.IndexByte(rest, ',')
			if end < 0 {
				end = len(rest)
			}
			val, rest = strings.TrimSpace(rest[:end]), rest[end:]
		}
		ch.params[key] = val
	}
	return ch, true
}

// token is a cached bearer token.
type token struct {
	value   string
	expires time.Time
}

// tokenCache holds bearer tokens per (host, scopes, credentials).
type tokenCache struct {
	mu sync.Mutex
	m  map[string]token
}

func newTokenCache() *tokenCache { return &tokenCache{m: map[string]token{}} }

func (tc *tokenCache) get(key string, now time.Time) (string, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	t, ok := tc.m[key]
	if !ok || !now.Before(t.expires) {
		delete(tc.m, key)
		return "", false
	}
	return t.value, true
}

func (tc *tokenCache) put(key string, t token) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	tc.m[key] = t
}

func (tc *tokenCache) drop(key string) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	delete(tc.m, key)
}

func tokenKey(host string, scopes []string, auth credentials.AuthConfig) string {
	h := sha256.New()
	for _, s := range []string{auth.Username, auth.Password, auth.IdentityToken, auth.RegistryToken} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return host + "|" + strings.Join(scopes, " ") + "|" + hex.EncodeToString(h.Sum(nil)[:12])
}

// tokenResponse is what token servers answer; "token" and "access_token"
// are synonyms.
type tokenResponse struct {
	Token        string    `json:"token"`
	AccessToken  string    `json:"access_token"`
	ExpiresIn    int       `json:"expires_in"`
	IssuedAt     time.Time `json:"issued_at"`
	RefreshToken string    `json:"refresh_token"`
}

// fetchToken asks the challenge's realm for a token covering scopes,
// retrying transient failures like any registry request. offline asks for
// a refresh token too (login).
func (c *Client) fetchToken(ctx context.Context, ch challenge, scopes []string, auth credentials.AuthConfig, offline bool) (tokenResponse, error) {
	delay := c.opts.RetryBackoff
	for attempt := 0; ; attempt++ {
		tr, transient, err := c.tryToken(ctx, ch, scopes, auth, offline)
		if err == nil || !transient || attempt >= c.opts.MaxRetries || ctx.Err() != nil {
			return tr, err
		}
		c.log.DebugContext(ctx, "retrying token request", "err", err, "delay", delay)
		if err := sleep(ctx, delay); err != nil {
			return tokenResponse{}, err
		}
		delay = min(delay*2, maxBackoff)
	}
}

// tryToken makes one token request; transient reports whether a retry
// may succeed.
func (c *Client) tryToken(ctx context.Context, ch challenge, scopes []string, auth credentials.AuthConfig, offline bool) (_ tokenResponse, transient bool, _ error) {
	req, err := tokenRequest(ctx, ch, scopes, auth, offline)
	if err != nil {
		return tokenResponse{}, false, err
	}
	realm := req.URL.Host
	req.Header.Set("User-Agent", c.opts.UserAgent)
	// The realm may be another host; its TLS policy is its own.
	hc, err := c.httpClient(endpoint{host: realm, insecure: c.isInsecure(realm)})
	if err != nil {
		return tokenResponse{}, false, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return tokenResponse{}, true, fmt.Errorf("token from %s: %w: %w", realm, err, errdefs.ErrUnavailable)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return tokenResponse{}, retryableStatus(resp.StatusCode), fmt.Errorf("token from %s: %w", realm, responseError(resp))
	}
	var tr tokenResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&tr); err != nil {
		return tokenResponse{}, false, fmt.Errorf("token from %s: decode: %v: %w", realm, err, errdefs.ErrInvalidArgument)
	}
	if tr.Token == "" {
		tr.Token = tr.AccessToken
	}
	if tr.Token == "" {
		return tokenResponse{}, false, fmt.Errorf("token from %s: empty token: %w", realm, errdefs.ErrUnauthenticated)
	}
	// The spec's floor: a token lives at least 60 s.
	if tr.ExpiresIn < 60 {
		tr.ExpiresIn = 60
	}
	return tr, false, nil
}

// tokenRequest builds the token request. With an identity token it is the
// OAuth2 refresh_token grant (POST form); otherwise a GET with repeated
// scope parameters, with Basic credentials when there are any.
func tokenRequest(ctx context.Context, ch challenge, scopes []string, auth credentials.AuthConfig, offline bool) (*http.Request, error) {
	realm, err := url.Parse(ch.params["realm"])
	if err != nil || realm.Host == "" || (realm.Scheme != "https" && realm.Scheme != "http") {
		return nil, fmt.Errorf("token realm %q: %w", ch.params["realm"], errdefs.ErrInvalidArgument)
	}
	service := ch.params["service"]
	if auth.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {auth.IdentityToken},
			"client_id": {clientID}, "service": {service}}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, realm.String(), strings.NewReader(form.Encode()))
		if err != nil {
			return nil, fmt.Errorf("token request: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req, nil
	}
	q := realm.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	if offline {
		q.Set("offline_token", "true")
		q.Set("client_id", clientID)
	}
	realm.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("token request: %w", err)
	}
	if auth.Username != "" || auth.Password != "" {
		req.SetBasicAuth(auth.Username, auth.Password)
	}
	return req, nil
}

// authorize sets the Authorization header for a request to ep with scopes,
// from the cache or by asking the token server. Before the host has
// challenged berth, requests go out anonymous.
func (s *Session) authorize(ctx context.Context, req *http.Request, ep endpoint, scopes []string, fresh bool) error {
	c := s.c
	c.mu.Lock()
	ch, known := c.challenges[ep.host]
	c.mu.Unlock()
	if !known {
		return nil
	}
	auth, err := s.authFor(ctx, ep.origin)
	if err != nil {
		return fmt.Errorf("credentials for %s: %w", ep.origin, err)
	}
	if ep.mirror {
		// Credentials belong to the origin; a mirror gets them only if it
		// asks by Basic challenge, never a token meant for the origin.
		auth = credentials.AuthConfig{}
	}
	switch ch.scheme {
	case "basic":
		if auth.Username != "" || auth.Password != "" {
			req.SetBasicAuth(auth.Username, auth.Password)
		}
		return nil
	case "bearer":
		if auth.RegistryToken != "" {
			req.Header.Set("Authorization", "Bearer "+auth.RegistryToken)
			return nil
		}
		sort.Strings(scopes)
		key := tokenKey(ep.host, scopes, auth)
		if !fresh {
			if tok, ok := c.tokens.get(key, time.Now()); ok {
				req.Header.Set("Authorization", "Bearer "+tok)
				return nil
			}
		}
		// Parallel layer requests share one token request.
		v, err, _ := c.tokenFlight.Do(key, func() (any, error) {
			tr, err := c.fetchToken(ctx, ch, scopes, auth, false)
			if err != nil {
				return "", err
			}
			issued := tr.IssuedAt
			if issued.IsZero() || issued.After(time.Now()) {
				issued = time.Now()
			}
			// Renew a little early so a token does not expire in flight.
			exp := issued.Add(time.Duration(tr.ExpiresIn)*time.Second - 5*time.Second)
			c.tokens.put(key, token{value: tr.Token, expires: exp})
			return tr.Token, nil
		})
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+v.(string))
		return nil
	}
	return fmt.Errorf("registry %s: auth scheme %q: %w", ep.host, ch.scheme, errdefs.ErrNotImplemented)
}

// learnChallenge records the challenge of a 401 response; it reports
// whether it is one berth can answer.
func (c *Client) learnChallenge(host string, resp *http.Response) bool {
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		ch, ok := parseChallenge(h)
		if ok && (ch.scheme == "basic" || ch.scheme == "bearer") {
			c.mu.Lock()
			c.challenges[host] = ch
			c.mu.Unlock()
			return true
		}
	}
	return false
}
