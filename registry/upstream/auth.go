package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"berth/errdefs"
)

// authorize adds credentials for repo's pull scope as the upstream asked
// for them before: Basic, or a bearer token fetched for the scope.
func (c *Client) authorize(req *http.Request, repo string) error {
	c.mu.Lock()
	scheme := c.scheme
	tok, ok := c.tokens[scope(repo)]
	c.mu.Unlock()
	switch {
	case scheme == "basic" && c.cfg.Username != "":
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	case scheme == "bearer" && ok && time.Now().Before(tok.expires):
		req.Header.Set("Authorization", "Bearer "+tok.value)
	}
	return nil
}

func scope(repo string) string { return "repository:" + repo + ":pull" }

// answerChallenge handles a 401: remembers Basic, or fetches a token.
func (c *Client) answerChallenge(ctx context.Context, challenge, repo string) error {
	scheme, params := parseChallenge(challenge)
	switch scheme {
	case "basic":
		if c.cfg.Username == "" {
			return c.errorf(errdefs.ErrUnauthenticated, "asks for credentials and none are configured")
		}
		c.mu.Lock()
		c.scheme = "basic"
		c.mu.Unlock()
		return nil
	case "bearer":
		tok, err := c.fetchToken(ctx, params, repo)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.scheme = "bearer"
		c.tokens[scope(repo)] = tok
		c.mu.Unlock()
		return nil
	}
	return c.errorf(errdefs.ErrUnavailable, "unsupported authentication challenge %q", challenge)
}

// fetchToken asks the realm for a pull token, with the credentials when
// there are some.
func (c *Client) fetchToken(ctx context.Context, params map[string]string, repo string) (token, error) {
	realm, err := url.Parse(params["realm"])
	if err != nil || (realm.Scheme != "http" && realm.Scheme != "https") {
		return token{}, c.errorf(errdefs.ErrUnavailable, "token realm %q unusable", params["realm"])
	}
	q := realm.Query()
	if s := params["service"]; s != "" {
		q.Set("service", s)
	}
	q.Set("scope", scope(repo))
	realm.RawQuery = q.Encode()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return token{}, c.errorf(errdefs.ErrUnavailable, "token request: %v", err)
	}
	if c.cfg.Username != "" {
		req.SetBasicAuth(c.cfg.Username, c.cfg.Password)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return token{}, c.errorf(errdefs.ErrUnavailable, "token request: %v", err)
	}
	if res.StatusCode != http.StatusOK {
		return token{}, c.statusError(res, "token for "+repo)
	}
	defer drain(res)
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&body); err != nil {
		return token{}, c.errorf(errdefs.ErrUnavailable, "token answer unreadable: %v", err)
	}
	t := body.Token
	if t == "" {
		t = body.AccessToken
	}
	if t == "" {
		return token{}, c.errorf(errdefs.ErrUnavailable, "token answer without a token")
	}
	life := time.Duration(max(body.ExpiresIn, 60)) * time.Second
	// Renewed a little early, so a token never expires in flight.
	return token{value: t, expires: time.Now().Add(life - life/10)}, nil
}

// parseChallenge splits `Bearer realm="…",service="…"` into the lowercased
// scheme and its parameters.
func parseChallenge(h string) (string, map[string]string) {
	scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	params := map[string]string{}
	for rest != "" {
		rest = strings.TrimLeft(rest, " ,")
		k, v, ok := strings.Cut(rest, "=")
		if !ok {
			break
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(v, `"`) {
			end := strings.Index(v[1:], `"`)
			if end < 0 {
				params[k] = v[1:]
				break
			}
			params[k], rest = v[1:1+end], v[2+end:]
		} else {
			val, r, _ := strings.Cut(v, ",")
			params[k], rest = strings.TrimSpace(val), r
		}
	}
	return strings.ToLower(scheme), params
}
