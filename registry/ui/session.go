package ui

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"berth/errdefs"
	"berth/registry/storage"
)

const (
	keyPath    = "ui/session-key"
	cookieName = "berth_ui"
)

// creator is storage.Creator's method: create-if-absent, exactly one winner
// across processes.
type creator interface {
	Create(ctx context.Context, path string, content []byte) error
}

// loadKey reads the session key, creating it on first start. With a
// create-if-absent driver every replica ends up with the first key; other
// drivers settle on the last one written (replicas that started at the
// same moment then ask their users to sign in again once).
func loadKey(ctx context.Context, d storage.Driver) ([]byte, error) {
	b, err := d.Get(ctx, keyPath)
	if errors.Is(err, errdefs.ErrNotFound) {
		var k [32]byte
		rand.Read(k[:])
		content := []byte(hex.EncodeToString(k[:]))
		if c, ok := d.(creator); ok {
			err = c.Create(ctx, keyPath, content)
			if errors.Is(err, errdefs.ErrAlreadyExists) {
				err = nil
			}
		} else {
			err = d.Put(ctx, keyPath, content)
		}
		if err != nil {
			return nil, fmt.Errorf("ui session key: %w", err)
		}
		b, err = d.Get(ctx, keyPath)
	}
	if err != nil {
		return nil, fmt.Errorf("ui session key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("ui session key %s: want 64 hex digits: %w", keyPath, errdefs.ErrInvalidArgument)
	}
	return key, nil
}

// sessionKeys derive separate MACs for cookies and CSRF tokens from the
// stored key, so a value valid as one can never pass as the other.
type sessionKeys struct{ cookie, csrf []byte }

func newSessionKeys(key []byte) sessionKeys {
	derive := func(label string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return sessionKeys{cookie: derive("berth-ui cookie"), csrf: derive("berth-ui csrf")}
}

func mac(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// csrfToken is bound to the session's nonce: a page from another session
// (or a forged form that cannot read our cookie) cannot produce it.
func (k sessionKeys) csrfToken(nonce string) string {
	return base64.RawURLEncoding.EncodeToString(mac(k.csrf, nonce))
}

// checkCSRF verifies the form's token and, where the browser says, that
// the request comes from our own pages.
func (k sessionKeys) checkCSRF(r *http.Request, sess session) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		return forbidden("cross-site request refused (Sec-Fetch-Site: %s)", site)
	}
	if o := r.Header.Get("Origin"); o != "" {
		if ou, err := url.Parse(o); err != nil || ou.Host != r.Host {
			return forbidden("cross-origin request refused")
		}
	}
	got, err := base64.RawURLEncoding.DecodeString(r.PostFormValue("csrf"))
	if err != nil || !hmac.Equal(got, mac(k.csrf, sess.Nonce)) {
		return forbidden("the form has expired or did not come from this page (CSRF check failed); reload the page and try again")
	}
	return nil
}

// session is the signed content of the cookie. Anonymous visitors get one
// too (User ""): its nonce binds their CSRF tokens (sign-in form, deletes
// in an open registry).
type session struct {
	User    string `json:"u,omitempty"`
	Nonce   string `json:"n"`
	Expires int64  `json:"e"` // unix seconds
}

func newSession(user string, ttl time.Duration) session {
	var n [16]byte
	rand.Read(n[:])
	return session{User: user, Nonce: base64.RawURLEncoding.EncodeToString(n[:]), Expires: time.Now().Add(ttl).Unix()}
}

func (k sessionKeys) encode(s session) string {
	b, _ := json.Marshal(s) // a struct of strings and an int always marshals
	p := base64.RawURLEncoding.EncodeToString(b)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(k.cookie, p))
}

func (k sessionKeys) decode(v string) (session, bool) {
	var s session
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return s, false
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(k.cookie, p)) {
		return s, false
	}
	b, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil || json.Unmarshal(b, &s) != nil || s.Nonce == "" {
		return s, false
	}
	return s, time.Now().Unix() < s.Expires
}

// session returns the request's valid session or a new anonymous one
// (fresh: it must be set). A signed-in user who was removed since, or any
// user once the registry runs open, falls back to anonymous.
func (u *UI) session(r *http.Request) (session, bool) {
	if c, err := r.Cookie(cookieName); err == nil {
		if s, ok := u.keys.decode(c.Value); ok {
			if s.User == "" || (!u.open && u.known(r.Context(), s.User)) {
				return s, false
			}
		}
	}
	return newSession("", u.ttl), true
}

func (u *UI) setSession(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: u.keys.encode(s), Path: "/ui/",
		Expires: time.Unix(s.Expires, 0), MaxAge: int(time.Until(time.Unix(s.Expires, 0)).Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secure(r),
	})
}

// secure reports whether the browser reached us over TLS, directly or
// through a proxy that terminated it (setting Secure on a cookie over plain
// HTTP would make the browser drop it).
func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}
