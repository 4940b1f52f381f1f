package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/distribution/reference"

	"berth/errdefs"
)

// Tags lists the tags of repo (for `pull --all-tags`), following the
// registry's Link pagination.
func (s *Session) Tags(ctx context.Context, repo reference.Named) ([]string, error) {
	var tags []string
	// No n= on the first page: registries cap it differently (some reject
	// a larger n with 400), and all of them paginate with Link.
	next := &url.URL{Path: "/v2/" + reference.Path(repo) + "/tags/list"}
	var ep endpoint
	for page := 0; next != nil; page++ {
		if page >= maxTagsPages {
			return nil, fmt.Errorf("tags of %s: more than %d pages: %w", reference.FamiliarName(repo), maxTagsPages, errdefs.ErrInvalidArgument)
		}
		r := request{
			method: http.MethodGet, domain: reference.Domain(repo), path: next.Path, query: next.Query(),
			scopes: []string{pullScope(repo)}, pull: true, idempotent: true,
		}
		var resp *http.Response
		var err error
		if page == 0 {
			resp, ep, err = s.do(ctx, r)
		} else {
			// Later pages come from the endpoint that served the first.
			resp, err = s.doEndpoint(ctx, ep, r)
		}
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", reference.FamiliarName(repo), err)
		}
		pageTags, link, err := readTagsPage(resp)
		if err != nil {
			return nil, fmt.Errorf("tags of %s: %w", reference.FamiliarName(repo), err)
		}
		tags = append(tags, pageTags...)
		next = nil
		if link != "" {
			u, err := resp.Request.URL.Parse(link)
			if err != nil {
				return nil, fmt.Errorf("tags of %s: Link %q: %v: %w", reference.FamiliarName(repo), link, err, errdefs.ErrInvalidArgument)
			}
			next = u
		}
	}
	return tags, nil
}

func readTagsPage(resp *http.Response) ([]string, string, error) {
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, "", responseError(resp)
	}
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxTagsPageBytes)).Decode(&body); err != nil {
		return nil, "", fmt.Errorf("decode: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return body.Tags, nextLink(resp.Header.Values("Link")), nil
}

// nextLink finds the rel="next" target in Link headers
// (`</v2/x/tags/list?n=2&last=b>; rel="next"`).
func nextLink(values []string) string {
	for _, v := range values {
		for _, part := range strings.Split(v, ",") {
			target, params, ok := strings.Cut(strings.TrimSpace(part), ";")
			if !ok || !strings.HasPrefix(target, "<") || !strings.HasSuffix(target, ">") {
				continue
			}
			for _, p := range strings.Split(params, ";") {
				k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
				if strings.EqualFold(k, "rel") && strings.Trim(v, `"`) == "next" {
					return target[1 : len(target)-1]
				}
			}
		}
	}
	return ""
}
