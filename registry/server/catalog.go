package server

import (
	"net/http"
	"sort"
)

// catalog lists repositories in lexical order with n/last pagination.
func (s *Server) catalog(w http.ResponseWriter, r *http.Request, _ route) error {
	repos, err := s.st.repositories(r.Context())
	if err != nil {
		return err
	}
	sort.Strings(repos)
	out, link, err := page(r, repos)
	if err != nil {
		return err
	}
	if link != "" {
		w.Header().Set("Link", link)
	}
	if out == nil {
		out = []string{}
	}
	return writeJSON(w, struct {
		Repositories []string `json:"repositories"`
	}{out})
}
