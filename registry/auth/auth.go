// Package auth decides who may do what in the registry: accounts with
// bcrypt-hashed passwords, namespace policy, HTTP Basic authentication and a
// Docker-compatible token service issuing signed JWTs.
//
// Accounts live in the registry's storage (so every registry process over the
// same storage sees the same users) as one JSON object:
//
//	auth/
//	  accounts.json     {"users": {"<name>": {"hash": "<bcrypt>", "admin": bool}},
//	                     "namespaces": {"<ns>": {"public": bool, "writers": [..], "readers": [..]}}}
//	  token-key.pem     PKCS#8 ECDSA P-256 key signing tokens (token mode only)
//
// Policy: admins may pull, push and delete anywhere, including top-level
// repositories. Every user owns the namespace of their name (pull, push,
// delete). A namespace's writers may pull and push, its readers pull, and a
// public namespace (or a top-level repository) may be pulled by anyone,
// anonymous clients included.
package auth

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Actions on repositories, as Docker scopes spell them.
const (
	ActionPull   = "pull"
	ActionPush   = "push"
	ActionDelete = "delete"
)

// Access is one resource and the actions wanted or granted on it, the
// element of a token scope and of the JWT "access" claim.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
	// Optional accesses are not required for the request; a token
	// authorizer asks the client to fetch them when the policy would grant
	// them (the source of a cross-repository mount).
	Optional bool `json:"-"`
}

// Scope renders a as a Docker scope string, "repository:foo/bar:pull,push".
func (a Access) Scope() string {
	return a.Type + ":" + a.Name + ":" + strings.Join(a.Actions, ",")
}

// ParseScope parses "type:name:action,action". Names may contain colons
// (registry host ports in some clients' scopes), so the name runs from the
// first colon to the last.
func ParseScope(s string) (Access, error) {
	first, last := strings.Index(s, ":"), strings.LastIndex(s, ":")
	if first < 0 || first == last {
		return Access{}, fmt.Errorf("scope %q: want type:name:actions", s)
	}
	a := Access{Type: s[:first], Name: s[first+1 : last]}
	for _, act := range strings.Split(s[last+1:], ",") {
		if act != "" && !slices.Contains(a.Actions, act) {
			a.Actions = append(a.Actions, act)
		}
	}
	return a, nil
}

// Authorizer decides whether a request may perform the accesses it needs.
// It returns nil to allow, or an *Error to render to the client.
type Authorizer interface {
	Authorize(r *http.Request, want []Access) error
}

// Error is an authentication or authorization failure as the distribution
// spec renders it: a status, an error code, and for 401 a challenge.
type Error struct {
	Status    int    // 401 or 403
	Code      string // UNAUTHORIZED or DENIED
	Message   string
	Challenge string // WWW-Authenticate value, for 401
	Detail    []Access
}

func (e *Error) Error() string { return e.Message }

// AllowAll is the authorizer of a registry without authentication.
type AllowAll struct{}

// Authorize allows everything.
func (AllowAll) Authorize(*http.Request, []Access) error { return nil }
