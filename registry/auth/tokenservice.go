package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"berth/errdefs"
)

// tokenResponse is the token endpoint's answer; "token" and "access_token"
// carry the same JWT for old and OAuth2 clients.
type tokenResponse struct {
	Token        string `json:"token"`
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"`
	IssuedAt     string `json:"issued_at"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
}

// tokenRequest is a GET or POST token request once parsed.
type tokenRequest struct {
	service string
	scopes  []string
	offline bool
	// exactly one of these identifies the client; none is anonymous
	basicUser, basicPass string
	hasBasic             bool
	refresh              string
}

func parseTokenRequest(r *http.Request) (tokenRequest, error) {
	var tr tokenRequest
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		tr.service, tr.offline = q.Get("service"), q.Get("offline_token") == "true"
		for _, s := range q["scope"] {
			tr.scopes = append(tr.scopes, strings.Fields(s)...)
		}
		tr.basicUser, tr.basicPass, tr.hasBasic = r.BasicAuth()
	case http.MethodPost:
		if err := r.ParseForm(); err != nil {
			return tr, fmt.Errorf("token request: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		f := r.PostForm
		tr.service, tr.offline = f.Get("service"), f.Get("access_type") == "offline"
		for _, s := range f["scope"] {
			tr.scopes = append(tr.scopes, strings.Fields(s)...)
		}
		switch f.Get("grant_type") {
		case "password":
			tr.basicUser, tr.basicPass, tr.hasBasic = f.Get("username"), f.Get("password"), true
		case "refresh_token":
			tr.refresh = f.Get("refresh_token")
		default:
			return tr, fmt.Errorf("grant_type %q: %w", f.Get("grant_type"), errdefs.ErrInvalidArgument)
		}
	default:
		return tr, fmt.Errorf("token request method %s: %w", r.Method, errdefs.ErrNotImplemented)
	}
	return tr, nil
}

// ServeHTTP is the token endpoint: GET with optional Basic credentials, or
// the OAuth2 POST form with a password or refresh token grant.
func (t *Tokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tr, err := parseTokenRequest(r)
	if err == nil && tr.service != "" && tr.service != t.cfg.Service {
		err = fmt.Errorf("service %q is not %q: %w", tr.service, t.cfg.Service, errdefs.ErrInvalidArgument)
	}
	if err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, errdefs.ErrNotImplemented) {
			status = http.StatusMethodNotAllowed
		}
		writeTokenError(w, status, "invalid_request", err.Error())
		return
	}
	resp, err := t.grant(r.Context(), tr)
	switch {
	case errors.Is(err, errdefs.ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", t.cfg.Service))
		writeTokenError(w, http.StatusUnauthorized, "invalid_grant", "invalid username, password or refresh token")
	case errors.Is(err, errdefs.ErrInvalidArgument):
		writeTokenError(w, http.StatusBadRequest, "invalid_scope", err.Error())
	case err != nil:
		writeTokenError(w, http.StatusInternalServerError, "server_error", "internal error")
	default:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(resp)
	}
}

// grant authenticates the client and issues a token for the intersection of
// the asked and the allowed scopes; a partial grant is not an error.
func (t *Tokens) grant(ctx context.Context, tr tokenRequest) (*tokenResponse, error) {
	user, u, err := t.identify(ctx, tr)
	if err != nil {
		return nil, err
	}
	var access []Access
	var granted []string
	for _, s := range tr.scopes {
		want, err := ParseScope(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
		}
		acts, err := t.accounts.Allowed(ctx, user, want)
		if err != nil {
			return nil, err
		}
		if len(acts) > 0 {
			want.Actions = acts
			access = append(access, want)
			granted = append(granted, want.Scope())
		}
	}
	c := claims{Access: access}
	c.Subject = user
	tok, issued, err := t.sign(c, t.cfg.TTL)
	if err != nil {
		return nil, err
	}
	resp := &tokenResponse{Token: tok, AccessToken: tok, ExpiresIn: int(t.cfg.TTL / time.Second),
		IssuedAt: issued.UTC().Format(time.RFC3339), Scope: strings.Join(granted, " ")}
	switch {
	case tr.refresh != "":
		resp.RefreshToken = tr.refresh
	case user != "" && tr.offline:
		rc := claims{Kind: "refresh", PassFP: passFP(u)}
		rc.Subject = user
		if resp.RefreshToken, _, err = t.sign(rc, t.cfg.RefreshTTL); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// identify returns the authenticated user, "" for anonymous requests.
func (t *Tokens) identify(ctx context.Context, tr tokenRequest) (string, User, error) {
	switch {
	case tr.refresh != "":
		c, err := t.parse(tr.refresh, "refresh")
		if err != nil {
			return "", User{}, err
		}
		u, ok, err := t.accounts.user(ctx, c.Subject)
		if err != nil {
			return "", User{}, err
		}
		if !ok || passFP(u) != c.PassFP {
			return "", User{}, fmt.Errorf("refresh token of %s: revoked: %w", c.Subject, errdefs.ErrUnauthenticated)
		}
		return c.Subject, u, nil
	case tr.hasBasic:
		u, err := t.accounts.Verify(ctx, tr.basicUser, tr.basicPass)
		return tr.basicUser, u, err
	}
	return "", User{}, nil
}

func writeTokenError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{
		"error": code, "error_description": msg,
		"errors": []map[string]string{{"code": "UNAUTHORIZED", "message": msg}},
	})
}
