package auth

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"berth/errdefs"
)

// Basic authorizes requests with HTTP Basic credentials checked against the
// accounts, htpasswd-style. Anonymous requests get what public namespaces
// allow; the API root demands credentials so that `docker login` works.
type Basic struct {
	Accounts *Accounts
	Realm    string
}

func (b *Basic) challenge(msg string, detail []Access) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: "UNAUTHORIZED", Message: msg,
		Challenge: fmt.Sprintf("Basic realm=%q", b.Realm), Detail: detail}
}

// Authorize checks the credentials and the policy for every access wanted.
func (b *Basic) Authorize(r *http.Request, want []Access) error {
	user := ""
	if name, pass, ok := r.BasicAuth(); ok {
		if _, err := b.Accounts.Verify(r.Context(), name, pass); errors.Is(err, errdefs.ErrUnauthenticated) {
			return b.challenge("invalid username or password", nil)
		} else if err != nil {
			return err
		}
		user = name
	}
	if len(want) == 0 && user == "" {
		return b.challenge("authentication required", nil)
	}
	return check(r, b.Accounts, user, want, func(missing []Access) error {
		if user == "" {
			return b.challenge("authentication required", missing)
		}
		return &Error{Status: http.StatusForbidden, Code: "DENIED", Message: "requested access to the resource is denied", Detail: missing}
	})
}

// check grants want when the policy allows all of it, else calls deny with
// what is missing.
func check(r *http.Request, a *Accounts, user string, want []Access, deny func([]Access) error) error {
	var missing []Access
	for _, w := range want {
		if w.Optional {
			continue
		}
		got, err := a.Allowed(r.Context(), user, w)
		if err != nil {
			return err
		}
		if !covers(got, w.Actions) {
			missing = append(missing, w)
		}
	}
	if len(missing) > 0 {
		return deny(missing)
	}
	return nil
}

func covers(granted, wanted []string) bool {
	for _, w := range wanted {
		if !slices.Contains(granted, w) && !slices.Contains(granted, "*") {
			return false
		}
	}
	return true
}

// scopes renders accesses as a challenge's space-separated scope list.
func scopes(want []Access) string {
	s := make([]string, len(want))
	for i, w := range want {
		s[i] = w.Scope()
	}
	return strings.Join(s, " ")
}
