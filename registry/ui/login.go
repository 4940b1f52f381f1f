package ui

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"berth/errdefs"
)

type loginView struct {
	Error    string
	Username string
	Next     string
}

// safeNext keeps a post-sign-in redirect inside the UI: a path under /ui/,
// never another host ("//evil", "/\evil").
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/ui/") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "//") {
		return "/ui/"
	}
	return next
}

func (u *UI) loginPage(w http.ResponseWriter, req *request, msg string, status int) error {
	if u.open {
		http.Redirect(w, req.r, "/ui/", http.StatusSeeOther)
		return nil
	}
	return u.render(w, req, status, "login", loginView{Error: msg, Username: req.r.PostFormValue("username"),
		Next: safeNext(req.r.FormValue("next"))})
}

// login checks the password against the registry's accounts and starts a
// new session (a new nonce, so a session fixed before sign-in is useless).
func (u *UI) login(w http.ResponseWriter, req *request) error {
	if u.open {
		http.Redirect(w, req.r, "/ui/", http.StatusSeeOther)
		return nil
	}
	if err := u.keys.checkCSRF(req.r, req.sess); err != nil {
		return err
	}
	name, pass := req.r.PostFormValue("username"), req.r.PostFormValue("password")
	key := throttleKey(name, req.r.RemoteAddr)
	if wait := u.throttle.blocked(key); wait > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		return u.loginPage(w, req, fmt.Sprintf("Too many failed sign-ins; try again in %d seconds.", int(wait.Seconds())+1), http.StatusTooManyRequests)
	}
	_, err := u.accounts.Verify(req.r.Context(), name, pass)
	if errors.Is(err, errdefs.ErrUnauthenticated) {
		u.throttle.failed(key)
		u.log.WarnContext(req.r.Context(), "ui sign-in failed", "user", name, "remote", req.r.RemoteAddr)
		return u.loginPage(w, req, "Invalid username or password.", http.StatusUnauthorized)
	} else if err != nil {
		return err
	}
	u.throttle.succeeded(key)
	u.setSession(w, req.r, newSession(name, u.ttl))
	http.Redirect(w, req.r, safeNext(req.r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

// logout replaces the session with a fresh anonymous one.
func (u *UI) logout(w http.ResponseWriter, req *request) error {
	if err := u.keys.checkCSRF(req.r, req.sess); err != nil {
		return err
	}
	u.setSession(w, req.r, newSession("", u.ttl))
	http.Redirect(w, req.r, "/ui/", http.StatusSeeOther)
	return nil
}
