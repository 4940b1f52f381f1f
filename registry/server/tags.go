package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strconv"
)

// page applies the spec's n/last pagination to a sorted list and returns
// the Link to the next page when entries remain.
func page(r *http.Request, all []string) ([]string, string, error) {
	q := r.URL.Query()
	if last := q.Get("last"); last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	ns := q.Get("n")
	if ns == "" {
		return all, "", nil
	}
	n, err := strconv.Atoi(ns)
	if err != nil || n < 0 {
		return nil, "", errf(http.StatusBadRequest, codeUnsupported, "invalid page size n=%q", ns)
	}
	if n >= len(all) {
		return all, "", nil
	}
	out := all[:n]
	if n == 0 {
		return out, "", nil
	}
	next := url.Values{"n": {ns}, "last": {out[n-1]}}
	return out, "<" + r.URL.Path + "?" + next.Encode() + `>; rel="next"`, nil
}

func writeJSON(w http.ResponseWriter, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(body)
	return err
}

// listTags lists a repository's tags in lexical order.
func (s *Server) listTags(w http.ResponseWriter, r *http.Request, rt route) error {
	ok, err := s.st.repoExists(r.Context(), rt.name)
	if err != nil {
		return err
	}
	if !ok {
		return errf(http.StatusNotFound, codeNameUnknown, "repository %s unknown", rt.name)
	}
	tags, err := s.st.listOrEmpty(r.Context(), tagsPath(rt.name))
	if err != nil {
		return err
	}
	sort.Strings(tags)
	out, link, err := page(r, tags)
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
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, out})
}
