package server

import (
	"encoding/json"
	"slices"
	"testing"
)

func TestTagListPagination(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	body := e.image("p/r", "l")
	tags := []string{"b", "A", "a", "10", "9", "latest"}
	for _, tag := range tags {
		e.pushManifest("p/r", tag, mtOCIManifest, body).want(t, 201, "")
	}
	sorted := slices.Clone(tags)
	slices.Sort(sorted)
	tests := []struct {
		query, link string
		want        []string
	}{
		{"", "", sorted},
		{"?n=2", `</v2/p/r/tags/list?last=9&n=2>; rel="next"`, sorted[:2]},
		{"?n=2&last=9", `</v2/p/r/tags/list?last=a&n=2>; rel="next"`, sorted[2:4]},
		{"?n=10&last=a", "", sorted[4:]},
		{"?last=latest", "", nil},
		{"?n=0", "", nil},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := e.do("GET", "/v2/p/r/tags/list"+tc.query, nil).want(t, 200, "")
			var got struct {
				Name string
				Tags []string
			}
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Name != "p/r" || !slices.Equal(got.Tags, tc.want) && len(got.Tags)+len(tc.want) > 0 {
				t.Fatalf("tags = %+v, want %v", got, tc.want)
			}
			if r.header.Get("Link") != tc.link {
				t.Fatalf("Link = %q, want %q", r.header.Get("Link"), tc.link)
			}
		})
	}
	e.do("GET", "/v2/p/r/tags/list?n=x", nil).want(t, 400, codeUnsupported)
	e.do("GET", "/v2/p/unknown/tags/list", nil).want(t, 404, codeNameUnknown)
}

func TestCatalog(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	repos := []string{"zeta", "alpha/one", "alpha/one/nested", "beta", "alpha-two"}
	for _, r := range repos {
		e.pushBlob(r, []byte(r))
	}
	sorted := slices.Clone(repos)
	slices.Sort(sorted)
	var all []string
	url := "/v2/_catalog?n=2"
	for url != "" {
		r := e.do("GET", url, nil).want(t, 200, "")
		var page struct{ Repositories []string }
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Repositories...)
		url = ""
		if l := r.header.Get("Link"); l != "" {
			url = l[1 : len(l)-len(`>; rel="next"`)]
		}
	}
	if !slices.Equal(all, sorted) {
		t.Fatalf("catalog pages = %v, want %v", all, sorted)
	}
}
