package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"berth/errdefs"
	"berth/registry/storage"
)

const tokenKeyPath = "auth/token-key.pem"

// TokenConfig configures the token service and the registry's checks.
type TokenConfig struct {
	// Realm is the token endpoint's absolute URL in challenges; empty
	// derives it from the request as <scheme>://<host>/token.
	Realm      string
	Service    string        // the registry's name, the tokens' audience
	Issuer     string        // the tokens' issuer
	TTL        time.Duration // access token lifetime, at least 60 s
	RefreshTTL time.Duration // refresh token lifetime
}

// Tokens is the built-in token service (Docker registry token auth) and the
// authorizer that checks its tokens. It signs ES256 JWTs with a key kept in
// storage, so every registry process over the storage accepts them.
type Tokens struct {
	cfg      TokenConfig
	key      *ecdsa.PrivateKey
	kid      string
	accounts *Accounts
	now      func() time.Time
}

// claims are a token's JWT claims. Kind is "refresh" for refresh tokens,
// which carry no access and a fingerprint of the password hash they were
// issued under, so changing the password revokes them.
type claims struct {
	jwt.RegisteredClaims
	Access []Access `json:"access,omitempty"`
	Kind   string   `json:"kind,omitempty"`
	PassFP string   `json:"pfp,omitempty"`
}

// NewTokens loads the signing key from storage, creating it on first use.
func NewTokens(ctx context.Context, d storage.Driver, accounts *Accounts, cfg TokenConfig) (*Tokens, error) {
	if cfg.Service == "" || cfg.Issuer == "" {
		return nil, fmt.Errorf("token service: service and issuer required: %w", errdefs.ErrInvalidArgument)
	}
	cfg.TTL = max(cfg.TTL, time.Minute)
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = 30 * 24 * time.Hour
	}
	key, err := loadKey(ctx, d)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &Tokens{cfg: cfg, key: key, kid: hex.EncodeToString(sum[:8]), accounts: accounts, now: time.Now}, nil
}

// loadKey reads the key or creates one. Two processes starting at once may
// both create one; with a storage.Creator exactly one is stored and every
// process reads it back (other drivers settle on the last one written).
func loadKey(ctx context.Context, d storage.Driver) (*ecdsa.PrivateKey, error) {
	b, err := d.Get(ctx, tokenKeyPath)
	if errors.Is(err, errdefs.ErrNotFound) {
		if err := createKey(ctx, d); err != nil {
			return nil, err
		}
		b, err = d.Get(ctx, tokenKeyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("token key %s: not PEM: %w", tokenKeyPath, errdefs.ErrInvalidArgument)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("token key %s: %w", tokenKeyPath, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("token key %s: not ECDSA: %w", tokenKeyPath, errdefs.ErrInvalidArgument)
	}
	return ek, nil
}

func createKey(ctx context.Context, d storage.Driver) error {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	// Replicas starting together must all end up with one key: the first
	// creator wins and the others read its key back.
	if c, ok := d.(storage.Creator); ok {
		if err := c.Create(ctx, tokenKeyPath, pemKey); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
			return fmt.Errorf("token key: %w", err)
		}
		return nil
	}
	if err := d.Put(ctx, tokenKeyPath, pemKey); err != nil {
		return fmt.Errorf("token key: %w", err)
	}
	return nil
}

func passFP(u User) string {
	sum := sha256.Sum256([]byte(u.Hash))
	return hex.EncodeToString(sum[:8])
}

func (t *Tokens) sign(c claims, ttl time.Duration) (string, time.Time, error) {
	now := t.now()
	c.Issuer, c.Audience = t.cfg.Issuer, jwt.ClaimStrings{t.cfg.Service}
	c.IssuedAt, c.NotBefore = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(-time.Second))
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", now, fmt.Errorf("token id: %w", err)
	}
	c.ID = hex.EncodeToString(id[:])
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = t.kid
	s, err := tok.SignedString(t.key)
	if err != nil {
		return "", now, fmt.Errorf("sign token: %w", err)
	}
	return s, now, nil
}

// parse verifies a token's signature, audience, issuer and lifetime.
func (t *Tokens) parse(s, kind string) (*claims, error) {
	var c claims
	_, err := jwt.ParseWithClaims(s, &c, func(*jwt.Token) (any, error) { return &t.key.PublicKey, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithAudience(t.cfg.Service), jwt.WithIssuer(t.cfg.Issuer),
		jwt.WithExpirationRequired(), jwt.WithTimeFunc(t.now))
	if err != nil {
		return nil, fmt.Errorf("token: %w: %w", err, errdefs.ErrUnauthenticated)
	}
	if c.Kind != kind {
		return nil, fmt.Errorf("token: wrong kind %q: %w", c.Kind, errdefs.ErrUnauthenticated)
	}
	return &c, nil
}

func (t *Tokens) realm(r *http.Request) string {
	if t.cfg.Realm != "" {
		return t.cfg.Realm
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/token"
}

func (t *Tokens) challenge(r *http.Request, want []Access, errCode, msg string) *Error {
	c := fmt.Sprintf("Bearer realm=%q,service=%q", t.realm(r), t.cfg.Service)
	if len(want) > 0 {
		c += fmt.Sprintf(",scope=%q", scopes(want))
	}
	if errCode != "" {
		c += fmt.Sprintf(",error=%q", errCode)
	}
	return &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: msg, Challenge: c, Detail: want}
}

// Authorize checks the request's bearer token covers every access wanted.
func (t *Tokens) Authorize(r *http.Request, want []Access) error {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return t.challenge(r, want, "", "authentication required")
	}
	c, err := t.parse(strings.TrimSpace(raw), "")
	if err != nil {
		return t.challenge(r, want, "invalid_token", err.Error())
	}
	var missing []Access
	for _, w := range want {
		if tokenCovers(c.Access, w) {
			continue
		}
		if w.Optional {
			got, err := t.accounts.Allowed(r.Context(), c.Subject, w)
			if err != nil {
				return err
			}
			if !covers(got, w.Actions) {
				continue
			}
		}
		missing = append(missing, w)
	}
	// missing holds required accesses and optional ones the policy would
	// grant: either way a new token with the full scope can do better.
	if len(missing) > 0 {
		return t.challenge(r, want, "insufficient_scope", "token does not grant the requested access")
	}
	return nil
}

func tokenCovers(granted []Access, w Access) bool {
	for _, g := range granted {
		if g.Type == w.Type && g.Name == w.Name && covers(g.Actions, w.Actions) {
			return true
		}
	}
	return false
}
