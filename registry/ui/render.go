package ui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strconv"
	"strings"
)

var pageNames = []string{"namespaces", "repositories", "tags", "manifest", "login", "error"}

var funcs = template.FuncMap{
	"size":  humanSize,
	"short": shortDigest,
	"join":  strings.Join,
	"nslabel": func(ns string) string {
		if ns == topLevel {
			return "(top level)"
		}
		return ns
	},
	// quoted renders an exec-form argument list as a Dockerfile would.
	"quoted": func(args []string) string {
		b, _ := json.Marshal(args) // strings always marshal
		return string(b)
	},
}

func parsePages() (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	for _, p := range pageNames {
		t, err := template.New("base.html").Funcs(funcs).ParseFS(templateFS, "templates/base.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", p, err)
		}
		pages[p] = t
	}
	return pages, nil
}

// frame is what the base layout needs besides the page's own data.
type frame struct {
	Title string
	User  string
	Open  bool
	CSRF  string
	Next  string // where sign-in returns to
	Page  any
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 rather than half a page.
func (u *UI) render(w http.ResponseWriter, req *request, status int, page string, data any) error {
	f := frame{Title: page, User: req.sess.User, Open: u.open, CSRF: req.csrf, Page: data}
	if req.r.Method == http.MethodGet && page != "login" {
		f.Next = req.r.URL.RequestURI()
	}
	var buf bytes.Buffer
	if err := u.pages[page].Execute(&buf, f); err != nil {
		u.log.Error("ui template", "page", page, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return nil
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	if req.r.Method != http.MethodHead {
		w.Write(buf.Bytes())
	}
	return nil
}

func humanSize(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// shortDigest is the first 12 hex digits, as docker shows image IDs.
func shortDigest(d string) string {
	_, hex, ok := strings.Cut(d, ":")
	if !ok || len(hex) < 12 {
		return d
	}
	return hex[:12]
}

func prettyJSON(raw []byte) string {
	var buf bytes.Buffer
	if json.Indent(&buf, raw, "", "  ") != nil {
		return string(raw)
	}
	return buf.String()
}

func isStatus(err error, status int) bool {
	var ue *uiError
	return errors.As(err, &ue) && ue.status == status
}
