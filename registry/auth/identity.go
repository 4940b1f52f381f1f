package auth

import (
	"net/http"
	"strings"

	"github.com/golang-jwt/jwt/v5"
)

// Identifier is implemented by authorizers that know who made a request
// they authorized (for the actor of registry events).
type Identifier interface {
	// Identity names the user of a request Authorize allowed; empty for
	// anonymous requests.
	Identity(r *http.Request) string
}

// Identity is the Basic user: Authorize verified the credentials.
func (b *Basic) Identity(r *http.Request) string {
	user, _, _ := r.BasicAuth()
	return user
}

// Identity is the token's subject. Authorize verified the signature, so the
// claims are read without verifying it again.
func (t *Tokens) Identity(r *http.Request) string {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return ""
	}
	var c claims
	if _, _, err := jwt.NewParser().ParseUnverified(strings.TrimSpace(raw), &c); err != nil {
		return ""
	}
	return c.Subject
}
