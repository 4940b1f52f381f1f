package remote

import (
	"context"
	"fmt"
	"net/http"

	"berth/errdefs"
	"berth/remote/credentials"
)

// Login checks creds against host's /v2/ the way `docker login` does
// through the daemon's /auth. host may be written as users do
// ("https://index.docker.io/v1/", "localhost:5000"). For token-auth
// registries it asks for an offline (refresh) token and returns it as the
// identity token to store instead of the password, when the token server
// hands one out; otherwise it returns "".
func (c *Client) Login(ctx context.Context, host string, creds credentials.AuthConfig) (string, error) {
	domain := normalizeHost(host)
	s := c.Session(func(context.Context, string) (credentials.AuthConfig, error) { return creds, nil })
	ep := c.endpointFor(domain, apiHost(domain), "https", false)
	r := request{method: http.MethodGet, domain: domain, path: "/v2/", idempotent: true}
	// The first answer is a challenge; doEndpoint answers it with creds.
	resp, err := s.doEndpoint(ctx, ep, r)
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", domain, err)
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusUnauthorized {
		err := responseError(resp)
		return "", fmt.Errorf("login to %s: %w", domain, errdefs.Errorf(errdefs.ErrUnauthenticated, "%v", err))
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("login to %s: %w", domain, responseError(resp))
	}
	c.mu.Lock()
	ch, known := c.challenges[ep.host]
	c.mu.Unlock()
	if !known || ch.scheme != "bearer" || creds.IdentityToken != "" || creds.Username == "" {
		return "", nil
	}
	// Credentials are good; trade them for a refresh token if offered.
	tr, err := c.fetchToken(ctx, ch, nil, creds, true)
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", domain, err)
	}
	return tr.RefreshToken, nil
}
