package ui

import (
	"context"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"

	"berth/registry/auth"
	"berth/registry/server"
	"berth/registry/storage"
)

const (
	defaultPage = 50
	maxPage     = 1000
	topLevel    = "_" // a namespace component cannot be "_"
)

func validName(name string) error {
	// The spec's grammar, checked before a name goes into a path of the
	// in-process API.
	if !server.ValidName(name) {
		return notFound("repository %q", name)
	}
	return nil
}

// pageParams reads ?n= and ?last=.
func pageParams(r *http.Request) (int, string) {
	n, err := strconv.Atoi(r.URL.Query().Get("n"))
	if err != nil || n <= 0 {
		n = defaultPage
	}
	return min(n, maxPage), r.URL.Query().Get("last")
}

// pageOf returns the n entries of the sorted list after last, and the
// last of them when more follow.
func pageOf(all []string, n int, last string) ([]string, string) {
	if last != "" {
		i := sort.SearchStrings(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	if len(all) <= n {
		return all, ""
	}
	return all[:n], all[n-1]
}

// visibleRepos lists the repositories the user may pull, sorted: the
// catalog filtered by the policy, so nobody learns of a repository they
// could not pull.
func (u *UI) visibleRepos(ctx context.Context, user string) ([]string, error) {
	all, err := u.catalog.get(ctx, u.d)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, name := range all {
		ok, err := u.may(ctx, user, name, auth.ActionPull)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, name)
		}
	}
	return out, nil
}

// catalogCache shares one walk of the repositories among the pages of the
// next few seconds, and among concurrent requests.
type catalogCache struct {
	ttl    time.Duration
	flight singleflight.Group
	mu     sync.Mutex
	names  []string // sorted; never modified once stored
	at     time.Time
}

func (c *catalogCache) get(ctx context.Context, d storage.Driver) ([]string, error) {
	c.mu.Lock()
	names, fresh := c.names, time.Since(c.at) < c.ttl
	c.mu.Unlock()
	if fresh {
		return names, nil
	}
	v, err, _ := c.flight.Do("", func() (any, error) {
		// Not the first caller's context: its cancellation must not fail
		// the others waiting on the same walk.
		names, err := server.Repositories(context.WithoutCancel(ctx), d)
		if err != nil {
			return nil, err
		}
		c.mu.Lock()
		c.names, c.at = names, time.Now()
		c.mu.Unlock()
		return names, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]string), nil
}

func namespaceOf(repo string) string {
	if ns, _, ok := strings.Cut(repo, "/"); ok {
		return ns
	}
	return topLevel
}

type nsRow struct {
	Name, Label string
	Repos       int
}

type listView struct {
	Title     string
	Rows      any
	Next      string // URL of the next page, "" on the last
	Filter    string
	Empty     string
	Namespace string
}

func nextURL(path string, r *http.Request, last string, n int) string {
	if last == "" {
		return ""
	}
	q := url.Values{"last": {last}, "n": {strconv.Itoa(n)}}
	if f := r.URL.Query().Get("q"); f != "" {
		q.Set("q", f)
	}
	return path + "?" + q.Encode()
}

func (u *UI) namespaces(w http.ResponseWriter, req *request) error {
	repos, err := u.visibleRepos(req.r.Context(), req.sess.User)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var names []string
	for _, r := range repos {
		ns := namespaceOf(r)
		if counts[ns] == 0 {
			names = append(names, ns)
		}
		counts[ns]++
	}
	sort.Strings(names)
	n, last := pageParams(req.r)
	pg, more := pageOf(names, n, last)
	rows := make([]nsRow, len(pg))
	for i, ns := range pg {
		rows[i] = nsRow{Name: ns, Label: ns, Repos: counts[ns]}
		if ns == topLevel {
			rows[i].Label = "(top level)"
		}
	}
	empty := "No repositories yet."
	if !u.open && req.sess.User == "" {
		empty = "No public repositories. Sign in to see yours."
	}
	return u.render(w, req, http.StatusOK, "namespaces", listView{Title: "Namespaces", Rows: rows,
		Next: nextURL("/ui/", req.r, more, n), Empty: empty})
}

type repoRow struct{ Name string }

func (u *UI) repositories(w http.ResponseWriter, req *request, ns string) error {
	if ns != topLevel && (strings.Contains(ns, "/") || !server.ValidName(ns)) {
		return notFound("namespace %q", ns)
	}
	repos, err := u.visibleRepos(req.r.Context(), req.sess.User)
	if err != nil {
		return err
	}
	filter := strings.TrimSpace(req.r.URL.Query().Get("q"))
	var in []string
	for _, r := range repos {
		if namespaceOf(r) == ns && strings.Contains(r, filter) {
			in = append(in, r)
		}
	}
	n, last := pageParams(req.r)
	pg, more := pageOf(in, n, last)
	rows := make([]repoRow, len(pg))
	for i, r := range pg {
		rows[i] = repoRow{Name: r}
	}
	title := "Namespace " + ns
	if ns == topLevel {
		title = "Top-level repositories"
	}
	return u.render(w, req, http.StatusOK, "repositories", listView{Title: title, Rows: rows, Filter: filter,
		Next: nextURL("/ui/ns/"+ns, req.r, more, n), Empty: "No repositories you may see here.", Namespace: ns})
}

// denied is the 403 page of a repository: it names the repository the user
// asked for and the missing permission, nothing about the repository.
func (u *UI) denied(req *request, name, what string) error {
	if u.open {
		return forbidden("%s", what)
	}
	who := "Anonymous visitors"
	if req.sess.User != "" {
		who = "Your account (" + req.sess.User + ")"
	}
	return forbidden("%s may not %s in repository %s.", who, what, name)
}

type tagRow struct {
	Tag string
	summary
	Pull string
}

type tagsView struct {
	Repo      string
	Namespace string
	Rows      []tagRow
	Next      string
	CanDelete bool
	Deleted   string
	Pull      string
}

func (u *UI) tags(w http.ResponseWriter, req *request, name string) error {
	ctx, user := req.r.Context(), req.sess.User
	if err := validName(name); err != nil {
		return err
	}
	if ok, err := u.may(ctx, user, name, auth.ActionPull); err != nil {
		return err
	} else if !ok {
		return u.denied(req, name, "view tags")
	}
	n, last := pageParams(req.r)
	who := req.caller()
	tags, more, err := u.api.tagPage(ctx, who, name, last, n)
	if err != nil {
		return err
	}
	canDelete, err := u.may(ctx, user, name, auth.ActionDelete)
	if err != nil {
		return err
	}
	v := tagsView{Repo: name, Namespace: namespaceOf(name), CanDelete: canDelete, Pull: pullCommand(req.r, name, "")}
	rows := make([]*tagRow, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8) // storage round trips overlap; an S3 page of 50 tags is not 100 sequential GETs
	for i, t := range tags {
		g.Go(func() error {
			m, err := u.api.manifest(gctx, who, name, t)
			if isStatus(err, http.StatusNotFound) {
				return nil // deleted while listing
			} else if err != nil {
				return err
			}
			rows[i] = &tagRow{Tag: t, summary: u.describe(gctx, who, name, m), Pull: pullCommand(req.r, name, ":"+t)}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, r := range rows {
		if r != nil {
			v.Rows = append(v.Rows, *r)
		}
	}
	if more && len(tags) > 0 {
		v.Next = nextURL("/ui/repo/"+name, req.r, tags[len(tags)-1], n)
	}
	if d := req.r.URL.Query().Get("deleted"); server.ValidTag(d) {
		v.Deleted = d
	}
	return u.render(w, req, http.StatusOK, "tags", v)
}

func (u *UI) deleteTag(w http.ResponseWriter, req *request, name, tag string) error {
	if err := u.keys.checkCSRF(req.r, req.sess); err != nil {
		return err
	}
	if err := validName(name); err != nil {
		return err
	}
	if !server.ValidTag(tag) {
		return notFound("tag %q", tag)
	}
	ctx, user := req.r.Context(), req.sess.User
	if ok, err := u.may(ctx, user, name, auth.ActionDelete); err != nil {
		return err
	} else if !ok {
		return u.denied(req, name, "delete tags")
	}
	if err := u.api.deleteTag(ctx, req.caller(), name, tag); err != nil {
		return err
	}
	u.log.InfoContext(ctx, "ui deleted tag", "repository", name, "tag", tag, "user", user)
	http.Redirect(w, req.r, "/ui/repo/"+name+"?deleted="+url.QueryEscape(tag), http.StatusSeeOther)
	return nil
}

// pullCommand names the registry as the browser reached it.
func pullCommand(r *http.Request, name, suffix string) string {
	return "docker pull " + r.Host + "/" + name + suffix
}
