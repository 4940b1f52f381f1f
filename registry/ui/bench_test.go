package ui

import (
	"fmt"
	"net/http"
	"testing"
)

// BenchmarkPages times the pages whose cost grows with the registry: the
// namespace list and one namespace's repositories walk the whole catalog
// (filtered by the account's policy); a tag page reads each tag's
// manifest and config.
func BenchmarkPages(b *testing.B) {
	s := newSite(b, false)
	s.users()
	const repos = 2000 // in 20 namespaces
	for i := range repos {
		s.pushImage(fmt.Sprintf("ns%02d/repo%04d", i%20, i), "v1", "amd64")
	}
	for i := range 49 {
		s.pushImage("ns00/repo0000", fmt.Sprintf("t%02d", i), "amd64")
	}
	br := s.browser()
	br.login("admin", "admin-pw")
	for _, path := range []string{"/ui/", "/ui/ns/ns07", "/ui/repo/ns00/repo0000", "/ui/repo/ns00/repo0000/-/manifests/v1"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(path); p.status != http.StatusOK {
					b.Fatalf("%s: %d", path, p.status)
				}
			}
		})
	}
}
