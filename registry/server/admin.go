package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	"berth/errdefs"
	"berth/registry/auth"
	"berth/registry/notify"
	"berth/registry/storage"
)

// DeleteRepository removes a repository: its tags, manifests, blob links and
// referrers. Repositories nested under its name stay. The blobs stay until
// garbage collection finds nothing else uses them. The repository leaves
// the catalog at once.
func DeleteRepository(ctx context.Context, d storage.Driver, name string) error {
	if len(name) > maxNameLen || !nameRe.MatchString(name) {
		return fmt.Errorf("repository name %q: %w", name, errdefs.ErrInvalidArgument)
	}
	st := store{d: d}
	names, err := st.listOrEmpty(ctx, repoPath(name))
	if err != nil {
		return err
	}
	found := false
	for _, n := range names {
		if strings.HasPrefix(n, "_") {
			found = true
			if err := ignoreNotFound(d.Delete(ctx, repoPath(name)+"/"+n)); err != nil {
				return err
			}
		}
	}
	if !found {
		return fmt.Errorf("repository %s: %w", name, errdefs.ErrNotFound)
	}
	return nil
}

// Repositories lists the repositories in lexical order, as the catalog.
func Repositories(ctx context.Context, d storage.Driver) ([]string, error) {
	st := store{d: d}
	names, err := st.repositories(ctx)
	sort.Strings(names)
	return names, err
}

// Admin serves berth's own management API beside /v2/, with the same
// authorization:
//
//	DELETE /api/v1/repositories/<name>   delete a repository (delete on it)
//	GET    /api/v1/gc                    the last or running collection (admin)
//	POST   /api/v1/gc[?dryRun=true]      collect now and report (admin)
type Admin struct {
	s  *Server
	gc GCOptions
	mu sync.Mutex // one collection per process at a time; gc/lock covers processes
}

// NewAdmin returns the management API over the server's storage; gc are the
// options of collections it starts.
func (s *Server) NewAdmin(gc GCOptions) *Admin {
	return &Admin{s: s, gc: gc}
}

const apiPrefix = "/api/v1/"

func (a *Admin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, _ := strings.CutPrefix(r.URL.Path, apiPrefix)
	var err error
	switch {
	case strings.HasPrefix(rest, "repositories/") && r.Method == http.MethodDelete:
		err = a.deleteRepo(w, r, strings.TrimSuffix(strings.TrimPrefix(rest, "repositories/"), "/"))
	case rest == "gc" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		err = a.collect(w, r)
	default:
		err = errf(http.StatusNotFound, codeUnsupported, "no route for %s %s", r.Method, r.URL.Path)
	}
	if err != nil {
		a.s.writeError(w, r, err)
	}
}

func (a *Admin) deleteRepo(w http.ResponseWriter, r *http.Request, name string) error {
	if err := validName(name); err != nil {
		return err
	}
	want := []auth.Access{{Type: "repository", Name: name, Actions: []string{auth.ActionDelete}}}
	if err := a.s.auth.Authorize(r, want); err != nil {
		return err
	}
	err := DeleteRepository(r.Context(), a.s.st.d, name)
	if errors.Is(err, errdefs.ErrNotFound) {
		return errf(http.StatusNotFound, codeNameUnknown, "repository %s unknown", name)
	} else if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	a.s.emit(r, notify.ActionDelete, notify.Target{Repository: name})
	return nil
}

// adminAccess is what only admins are granted.
var adminAccess = []auth.Access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}

func (a *Admin) collect(w http.ResponseWriter, r *http.Request) error {
	if err := a.s.auth.Authorize(r, adminAccess); err != nil {
		return err
	}
	if r.Method == http.MethodGet {
		st, err := a.s.st.gcState(r.Context())
		if err != nil {
			return err
		}
		return writeJSON(w, st)
	}
	if !a.mu.TryLock() {
		return errf(http.StatusConflict, codeUnsupported, "a garbage collection is already running in this registry")
	}
	defer a.mu.Unlock()
	opts := a.gc
	opts.DryRun = r.URL.Query().Get("dryRun") == "true"
	rep, err := Collect(r.Context(), a.s.st.d, opts)
	if errors.Is(err, errdefs.ErrConflict) {
		return errf(http.StatusConflict, codeUnsupported, "%v", err)
	} else if err != nil {
		return err
	}
	return writeJSON(w, rep)
}
